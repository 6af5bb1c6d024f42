"""The image the load pulls: a config and a few small random layers, pushed with the registry API."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass

from harness.registry_api import RegistryApi, sha256_digest

MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_TYPE = "application/vnd.docker.container.image.v1+json"
LAYER_TYPE = "application/vnd.docker.image.rootfs.diff.tar.gzip"


@dataclass(frozen=True)
class PulledImage:
    """What a pull asks for and must get back: the manifest's digest and its blobs' digests."""

    repository: str
    tag: str
    manifest_digest: str
    config_digest: str
    layer_digests: tuple[str, ...]


def push_image(api: RegistryApi, repository: str, tag: str, *, layers: int = 5, layer_bytes: int = 4096) -> PulledImage:
    """Push ``layers`` random blobs, a config and a schema-2 manifest naming them; return the image."""
    layer_digests = [api.upload_blob(repository, [secrets.token_bytes(layer_bytes)]) for _ in range(layers)]
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": layer_digests}}
    ).encode()
    config_digest = api.upload_blob(repository, [config])
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {"mediaType": CONFIG_TYPE, "size": len(config), "digest": config_digest},
            "layers": [{"mediaType": LAYER_TYPE, "size": layer_bytes, "digest": d} for d in layer_digests],
        }
    ).encode()
    response = api.request(
        "PUT", f"/v2/{repository}/manifests/{tag}", data=manifest, headers={"Content-Type": MANIFEST_TYPE}
    )
    if response.status_code != 201:
        raise RuntimeError(f"PUT manifest {repository}:{tag}: HTTP {response.status_code} {response.text[:200]}")
    return PulledImage(repository, tag, sha256_digest(manifest), config_digest, tuple(layer_digests))
