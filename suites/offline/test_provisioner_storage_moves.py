"""Data is never stranded silently: a new storage.bucket, or a renamed deployment whose bucket another
deployment holds, is shown by `plan` as what it is and made by `up` only with --switch-storage."""

from __future__ import annotations

import pytest

from provisioning.errors import InputError, OwnershipError
from provisioning.names import TAG_CREATED, TAG_DEPLOYMENT
from suites.offline.conftest import watch


def _tags(s3, bucket: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]}


def test_a_new_bucket_is_shown_refused_unasked_and_keeps_the_old_images(make_provisioner, make_spec, clients):
    old, new = make_spec(), make_spec(storage={"bucket": "spotreg-offline-images-2"})
    make_provisioner(old).up()
    clients.s3.put_object(Bucket=old.storage.bucket, Key="docker/registry/v2/repositories/app/x", Body=b"image")
    notes = [c for c in make_provisioner(new).plan().changes if c.note]
    assert [n.name for n in notes] == [old.storage.bucket] and "aws s3 rb" in notes[0].detail
    with watch(clients) as log, pytest.raises(InputError) as refused:
        make_provisioner(new).up()
    assert refused.value.exit_code == 2 and "--switch-storage" in str(refused.value)
    assert not [c for c in log.mutating() if c != "PutParameter"], log.mutating()  # refused before any change
    inventory = make_provisioner(new).up(switch_storage=True)
    assert {b.id for b in inventory.of("bucket")} == {old.storage.bucket, new.storage.bucket}
    removed = make_provisioner(new).down(delete_data=True)
    assert clients.s3.get_object(Bucket=old.storage.bucket, Key="docker/registry/v2/repositories/app/x")
    assert any(c.name == old.storage.bucket and c.action == "keep" for c in removed.kept)


def test_an_old_bucket_without_images_needs_no_flag(make_provisioner, make_spec):
    make_provisioner(make_spec()).up()
    assert make_provisioner(make_spec(storage={"bucket": "spotreg-offline-images-2"})).up().of("instance")


def test_a_renamed_deployment_takes_over_its_bucket_only_when_asked(make_provisioner, make_spec, clients):
    old, renamed = make_spec(), make_spec(deployment={"name": "renamed"})
    make_provisioner(old).up()
    (change,) = [c for c in make_provisioner(renamed).plan().changes if c.kind == "bucket"]
    assert change.action == "update" and "taken over from deployment 'offline'" in change.detail
    with pytest.raises(OwnershipError) as refused:
        make_provisioner(renamed).up()
    assert refused.value.exit_code == 7 and "--switch-storage" in str(refused.value)
    make_provisioner(renamed).up(switch_storage=True)
    tags = _tags(clients.s3, old.storage.bucket)
    assert tags[TAG_DEPLOYMENT] == "renamed" and tags[TAG_CREATED] == "renamed"
    make_provisioner(old).down()  # the old deployment goes; the bucket is not its any more
    make_provisioner(renamed).down(delete_data=True)
    assert old.storage.bucket not in [b["Name"] for b in clients.s3.list_buckets()["Buckets"]]
