"""Pull capacity of a CPU-limited registry under N concurrent docker-like clients (issue 13).

``python -m benchmarks.pull_capacity --cpus 0.2 --cpus 2`` measures every configuration
(``harness.load.stand.CONFIGURATIONS``) at every CPU limit side by side and prints a table; ``--json``
writes every figure.
"""
