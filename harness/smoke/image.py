"""The image the round trip pushes: tiny, unique per call, a valid schema-2 image (one gzipped layer of
random bytes, its config, and the manifest naming both)."""

from __future__ import annotations

import gzip
import io
import json
import secrets
import tarfile
from dataclasses import dataclass

from harness.registry_api import IMAGE_CONFIG, LAYER_TAR_GZIP, MANIFEST_V2, sha256_digest
from harness.smoke.target import SMOKE_NAMESPACE


@dataclass(frozen=True)
class SmokeImage:
    """A tiny unique image: one gzipped layer of random bytes, its config, and the manifest naming both."""

    repository: str
    tag: str
    layer: bytes
    config: bytes
    manifest: bytes

    @property
    def layer_digest(self) -> str:
        return sha256_digest(self.layer)

    @property
    def config_digest(self) -> str:
        return sha256_digest(self.config)

    @property
    def manifest_digest(self) -> str:
        return sha256_digest(self.manifest)

    @property
    def reference(self) -> str:
        return f"{self.repository}:{self.tag}"

    def blobs(self) -> list[tuple[str, bytes]]:
        """(kind, bytes) of every blob the manifest names, in push order."""
        return [("layer", self.layer), ("config", self.config)]


def make_smoke_image(token: str | None = None, *, payload_bytes: int = 1024) -> SmokeImage:
    """A new image under ``spotreg-smoke/<token>:smoke-<token>``, different every call."""
    token = token or secrets.token_hex(6)
    content = f"spotreg smoke {token}\n".encode() + secrets.token_bytes(payload_bytes)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        member = tarfile.TarInfo(f"spotreg-smoke/{token}")
        member.size, member.mode, member.mtime = len(content), 0o644, 0
        archive.addfile(member, io.BytesIO(content))
    layer_tar = buffer.getvalue()
    layer = gzip.compress(layer_tar, mtime=0)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Labels": {"io.spotreg.smoke": token}},
            "rootfs": {"type": "layers", "diff_ids": [sha256_digest(layer_tar)]},
            "history": [{"created_by": "spotreg smoke check"}],
        },
        separators=(",", ":"),
        sort_keys=True,
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_V2,
            "config": {"mediaType": IMAGE_CONFIG, "size": len(config), "digest": sha256_digest(config)},
            "layers": [{"mediaType": LAYER_TAR_GZIP, "size": len(layer), "digest": sha256_digest(layer)}],
        },
        indent=3,
    ).encode()
    return SmokeImage(f"{SMOKE_NAMESPACE}/{token}", f"smoke-{token}", layer, config, manifest)
