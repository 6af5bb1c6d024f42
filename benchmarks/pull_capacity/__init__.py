"""Pull capacity of a CPU-limited registry under N concurrent docker-like clients (issue 13).

``python -m benchmarks.pull_capacity --cpus 0.2 --cpus 2`` measures every configuration
(``harness.load.stand.CONFIGURATIONS``: ``direct-5``, ``direct-10``, ``front-10``) at every CPU limit side
by side, prints a table and the ratios front-10/direct-5 and front-10/direct-10; ``--json`` writes every
figure.
"""
