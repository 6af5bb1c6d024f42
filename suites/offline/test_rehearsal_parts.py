"""The instance box's small parts that need no engine: the image recipe's hash, the listed overrides,
the /etc/hosts lines, the forwarder, the moto server's addresses, the images a rehearsal plays."""

from __future__ import annotations

import shutil
import socket
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from docker.errors import ImageNotFound

from fixtures.images import names
from fixtures.live_aws import endpoint_for
from provisioning.health import registry_url
from provisioning.rehearsal import box_image, hosts_file, rehearse
from provisioning.rehearsal.box_boot import BootTimes
from provisioning.rehearsal.forward import Forwarder
from provisioning.rehearsal.moto_server import MotoServer
from provisioning.rehearsal.overrides import BOX_OVERRIDES, UNIT_ENVIRONMENT, render_unit_drop_in
from provisioning.rehearsal.world import Endpoint, World
from provisioning.spec_loading import spec_from_mapping
from suites.offline.spec_strategies import example_mapping

README = Path(__file__).resolve().parents[2] / "README.md"


def test_recipe_hash_follows_the_overlay_files_not_the_checkout_path(tmp_path, monkeypatch):
    original = box_image.recipe_hash()
    moved = tmp_path / "elsewhere" / "rootfs"
    shutil.copytree(box_image.ROOTFS_OVERLAY, moved)
    monkeypatch.setattr(box_image, "ROOTFS_OVERLAY", moved)
    assert box_image.recipe_hash() == original  # another clone, the same image

    config = moved / "etc/cloud/cloud.cfg.d/90-spotreg-box.cfg"
    config.write_text(config.read_text() + "# one more line\n")
    assert box_image.recipe_hash() != original  # a changed recipe, a new image
    assert box_image.image_name() == f"{box_image.IMAGE_REPOSITORY}:{box_image.recipe_hash()}"


def test_the_image_recipe_takes_the_overlay_and_the_awscli_it_names():
    hooks = box_image.customize_hooks(Path("/r"), Path("/w"), Path("/o"))
    assert hooks[0] == 'cp -a /o/. "$1/"'
    assert any(box_image.AWSCLI in hook and "--no-index" in hook for hook in hooks)  # nothing fetched in the chroot
    assert ': > "$1/etc/machine-id"' in hooks  # every box its own machine id
    assert {"systemd", "cloud-init", "docker.io", "curl", "python3", "iproute2"} <= set(box_image.PACKAGES)


def test_the_unit_drop_in_takes_listed_variables_only():
    text = render_unit_drop_in({"AWS_ENDPOINT_URL": "http://127.0.0.1:5000"})
    assert "Environment=AWS_ENDPOINT_URL=http://127.0.0.1:5000" in text
    assert "After=spotreg-box-preload.service" in text
    with pytest.raises(ValueError, match="REGISTRY_HTTP_ADDR"):
        render_unit_drop_in({"REGISTRY_HTTP_ADDR": "127.0.0.1:1"})
    assert "AWS_ENDPOINT_URL" in UNIT_ENVIRONMENT


def test_the_readme_lists_every_box_override():
    readme = README.read_text()
    assert [name for name in BOX_OVERRIDES if f"| {name} |" not in readme] == []


def test_hosts_lines_are_added_replaced_and_removed_by_marker(tmp_path):
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost")  # no newline at the end
    hosts_file.point("registry.example.com", ["10.213.1.2"], "spotreg rehearse-a", hosts)
    hosts_file.point("registry.example.com", ["10.213.1.3"], "spotreg rehearse-a", hosts)
    hosts_file.point("other.example.com", ["10.213.2.2"], "spotreg rehearse-b", hosts)
    assert hosts.read_text().splitlines() == [
        "127.0.0.1 localhost",
        "10.213.1.3 registry.example.com # spotreg rehearse-a",
        "10.213.2.2 other.example.com # spotreg rehearse-b",
    ]
    hosts_file.remove("spotreg rehearse-a", hosts)
    assert "registry.example.com" not in hosts.read_text()
    assert hosts_file.remove_prefixed("spotreg rehearse-", hosts) == 1
    assert hosts.read_text() == "127.0.0.1 localhost\n"


def test_the_forwarder_relays_both_ways_and_resets_on_close():
    upstream = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []

    def serve() -> None:
        connection, _ = upstream.accept()
        with connection:
            data = b""
            while chunk := connection.recv(65536):
                data += chunk
            received.append(data)
            connection.sendall(data[::-1])

    threading.Thread(target=serve, daemon=True).start()
    listener = socket.create_server(("127.0.0.1", 0))
    forwarder = Forwarder(listener, upstream.getsockname())
    payload = bytes(range(256)) * 4096  # 1 MiB
    with socket.create_connection(listener.getsockname()) as client:
        client.sendall(payload)
        client.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := client.recv(65536):
            answer += chunk
    assert received == [payload] and answer == payload[::-1]
    address = listener.getsockname()
    forwarder.close()
    with pytest.raises(OSError):
        socket.create_connection(address, timeout=2)
    upstream.close()


def test_moto_hands_out_public_addresses_from_the_box_network():
    server = MotoServer(addresses="10.213.250.0/24", zones={"example.com": "Z0SPOTREGPARTS"}).start()
    try:
        ec2 = server.client("ec2")
        image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        first = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
        second = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
        described = ec2.describe_instances(InstanceIds=[first, second])["Reservations"]
        addresses = sorted(i["PublicIpAddress"] for r in described for i in r["Instances"])
        elastic = ec2.allocate_address(Domain="vpc")["PublicIp"]
        assert addresses == ["10.213.250.2", "10.213.250.3"]  # .1 is the network's gateway
        assert elastic == "10.213.250.4"
        zones = server.client("route53").list_hosted_zones()["HostedZones"]
        assert [(z["Name"], z["Id"].rsplit("/", 1)[-1]) for z in zones] == [("example.com.", "Z0SPOTREGPARTS")]
    finally:
        server.stop()


def test_an_endpoint_without_a_port_is_refused_naming_it():
    assert Endpoint("http://127.0.0.1:4566").port == 4566
    with pytest.raises(ValueError, match=r"'http://s3\.example\.com' names no port"):
        _ = Endpoint("http://s3.example.com").port


def test_boot_times_read_as_a_line_without_the_phases_not_measured():
    assert str(BootTimes(systemd=1.94, cloud_init=None, registry=9.9)) == "systemd up 1.9 s, registry healthy 9.9 s"


@pytest.mark.parametrize(
    ("tls", "port", "url"),
    [
        ("selfsigned", 443, "https://10.213.1.2"),
        ("selfsigned", 8443, "https://10.213.1.2:8443"),
        ("none", 5000, "http://10.213.1.2:5000"),
        ("letsencrypt", 5000, "https://10.213.1.2"),  # Caddy on 443 in front of the registry
    ],
)
def test_one_registry_url_for_the_provisioner_the_box_and_the_live_run(tls, port, url):
    mapping = example_mapping()
    mapping["tls"] = {"mode": tls, **({"email": "ops@example.com"} if tls == "letsencrypt" else {})}
    mapping["registry"]["port"] = port
    if tls == "none":
        mapping["network"]["operator_cidrs"] = ["203.0.113.7/32"]
    spec = spec_from_mapping(mapping)
    assert registry_url(spec, "10.213.1.2") == url
    assert endpoint_for(spec, "10.213.1.2", None).url == url


def test_rehearse_names_the_images_the_builder_builds():
    """The product does not import the harness: its copies of the names must agree."""
    assert (rehearse.REGISTRY_IMAGE_ENV, rehearse.DEFAULT_REGISTRY_IMAGE) == (
        names.REGISTRY_IMAGE_ENV,
        names.DEFAULT_REGISTRY_IMAGE,
    )
    assert (rehearse.FRONT_IMAGE_ENV, rehearse.DEFAULT_FRONT_IMAGE) == (
        names.FRONT_IMAGE_ENV,
        names.DEFAULT_FRONT_IMAGE,
    )


def _engine_with(*present: str) -> Any:
    def get(name: str) -> str:
        if name not in present:
            raise ImageNotFound(name)
        return name

    return SimpleNamespace(images=SimpleNamespace(get=get))


def test_the_front_source_is_the_environment_s_the_configured_or_the_default_image(monkeypatch):
    spec = spec_from_mapping(example_mapping())
    monkeypatch.setenv(rehearse.FRONT_IMAGE_ENV, "local/nginx:mine")
    engine = _engine_with("local/nginx:mine", spec.registry.front_image, rehearse.DEFAULT_FRONT_IMAGE)
    assert rehearse._front_source(engine, spec, None) == "local/nginx:mine"
    assert rehearse._front_source(engine, spec, rehearse.DEFAULT_FRONT_IMAGE) == rehearse.DEFAULT_FRONT_IMAGE
    only_the_default = _engine_with(rehearse.DEFAULT_FRONT_IMAGE)
    assert rehearse._front_source(only_the_default, spec, None) == rehearse.DEFAULT_FRONT_IMAGE
    with pytest.raises(rehearse.RehearsalError, match="no front image in the Docker engine: tried ") as refused:
        rehearse._front_source(_engine_with(), spec, None)
    for origin, name in (
        (f"${rehearse.FRONT_IMAGE_ENV}", "local/nginx:mine"),
        ("registry.front_image", spec.registry.front_image),
        ("default", rehearse.DEFAULT_FRONT_IMAGE),
    ):
        assert f"{origin} = {name!r}" in str(refused.value)  # each candidate, and where it came from
    assert refused.value.hint == "build the front image from Debian's package with `make images`"


def test_a_box_is_not_booted_without_the_image_that_plays_the_front(tmp_path):
    world = World(_engine_with(), "run", cast(Any, None), cast(Any, None), "box", "registry", tmp_path)
    with pytest.raises(ValueError, match=r"front_source: the image that plays registry\.front_image"):
        world.boot(spec_from_mapping(example_mapping()), "i-0123456789abcdef0")
