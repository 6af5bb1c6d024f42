"""N concurrent clients pulling, in a child process of their own (never in moto's or the caller's).

Bounded twice: ``pulls`` in all, and ``deadline`` seconds of wall time (pulls not started by then are
not started; one in flight ends within ``timeout`` per request).
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field

import requests

from harness.load.image import PulledImage
from harness.load.pull import Credentials, PullResult, pull_once


@dataclass(frozen=True)
class LoadPlan:
    """How much load: ``clients`` at once, ``pulls`` in all, within ``deadline`` s, ``timeout`` per request."""

    clients: int = 16
    pulls: int = 120
    deadline: float = 90.0
    timeout: float = 30.0
    warmup: int = 2


@dataclass
class LoadRun:
    """What the clients saw: every pull, and the wall time from the first start to the last end."""

    plan: LoadPlan
    wall: float = 0.0
    pulls: list[PullResult] = field(default_factory=list)
    unstarted: int = 0  # pulls the deadline left out


def _session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # loopback only: no proxies, no netrc
    return session


def run_clients(base_url: str, image: PulledImage, credentials: Credentials, plan: LoadPlan) -> LoadRun:
    """Run the plan's clients as threads of this process; return every pull's result."""
    with _session() as session:
        for _ in range(plan.warmup):
            pull_once(session, base_url, image, credentials, plan.timeout)
    run = LoadRun(plan)
    tickets = iter(range(plan.pulls))
    lock = threading.Lock()
    start = time.perf_counter()
    stop_at = start + plan.deadline

    def client() -> None:
        with _session() as session:
            while time.perf_counter() < stop_at:
                with lock:
                    if next(tickets, None) is None:
                        return
                result = pull_once(session, base_url, image, credentials, plan.timeout)
                with lock:
                    run.pulls.append(result)

    with ThreadPoolExecutor(plan.clients) as pool:
        for future in [pool.submit(client) for _ in range(plan.clients)]:
            future.result()
    run.wall = time.perf_counter() - start
    run.unstarted = plan.pulls - len(run.pulls)
    return run


def run_load(base_url: str, image: PulledImage, credentials: Credentials, plan: LoadPlan) -> LoadRun:
    """``run_clients`` in a spawned child process, so the load's CPU is never the caller's."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(run_clients, base_url, image, credentials, plan).result()
