"""Registry push/pull throughput against raw boto3 put/get of the same bytes on the same S3 server.

    .venv/bin/python -m benchmarks.registry_vs_s3 [--size-mib 256] [--rounds 3]
        [--redirect on|off|both] [--json out.json]

What runs (all of it on 127.0.0.1):

- a world (``provisioning.rehearsal.world.World``: moto's server as a child process, a box network)
  plays AWS;
- the real provisioner provisions a deployment into it (``fixtures.booted_registry.provision``) and an
  instance box boots the user data the instance receives (self-signed TLS, storage redirect on or
  off, only ``BOX_OVERRIDES`` differ) — exactly what the stack tier runs;
- per round, interleaved A, B (C), A, B (C)... so that the drift of this shared machine hits both sides:

  A. registry: a fresh image (``spotreg/busybox`` + ONE new layer of ``--size-mib`` random bytes, built
     untimed with the docker SDK) is pushed with the test user's credentials (timed), every local
     reference to it removed, and pulled back (timed). The push is checked to have really uploaded:
     the layer's blob is new in the bucket after the push and holds the manifest's size; the pull is
     checked to have downloaded it (no "Already exists") and to give the pushed image id;
  B. raw boto3: the very blob the registry stored (the gzip-compressed layer, the bytes docker pushed,
     copied out of the bucket untimed and checked against its digest) is uploaded with
     ``upload_file`` and downloaded with ``download_file`` (boto3's default ``TransferConfig``:
     multipart above 8 MiB, 8 MiB parts, 10 threads), each timed. For context only (not in the
     ratio), the same object is also fetched with one plain ``get_object``: moto answers each of
     ``download_file``'s 8 MiB range requests by reading the whole object, which slows the raw get;
  C. context, not in the ratio: the registry's HTTP API without docker — a blob of the same size
     (fresh random bytes: the registry skips the copy of a blob it already has) uploaded with one
     POST, one streamed PATCH and the PUT, then fetched with one GET (following the redirect to S3
     when it is on). It separates docker's work (gzip, digests, layer extraction) from the
     registry's and S3's.

MiB/s are the compressed layer blob's bytes over the wall time, on both sides. Random bytes do not
compress, so the blob is the layer's size plus about 80 KiB (0.03 %) of tar and gzip framing. The
registry side also moves the image config and manifest (a few KiB) and checks the busybox base layer
exists (it was pushed once, untimed, before the rounds): neither is counted in the bytes. The ratio
is registry / raw, per round; the medians are over rounds (the ratio's median is the median of the
paired per-round ratios).

Everything started is removed at the end, also on Ctrl-C or SIGTERM: the registry containers, every
image built or pulled, the moto server (its state lives in memory) and the temporary files.

Modules: ``results`` (a round's figures, medians), ``bench`` (the set-up and the three sides of a
round), ``registry_log`` (the registry's own time per request), ``machine`` (facts about this machine),
``report`` (the tables), ``main`` (flags, the run, its clean-up through ``harness.teardown``).
"""

from benchmarks.registry_vs_s3.common import BENCH_LABEL_VALUE, BenchmarkError
from benchmarks.registry_vs_s3.main import main

__all__ = ["BENCH_LABEL_VALUE", "BenchmarkError", "main"]
