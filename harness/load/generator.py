"""N concurrent clients pulling, and optionally a few pushing, in a child process of their own (never in
moto's or the caller's).

Bounded twice: ``pulls`` in all, and ``deadline`` seconds of wall time (pulls not started by then are
not started; one in flight ends within ``timeout`` per request). Pushers push a fresh small image, one
after another, while the pullers pull, and stop with them.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field

import requests

from harness.load.image import PulledImage, push_image
from harness.load.pull import Credentials, PullResult, pull_once
from harness.registry_api import RegistryApi

PUSH_LAYER_BYTES = 64 * 1024


@dataclass(frozen=True)
class LoadPlan:
    """How much load: ``clients`` at once, ``pulls`` in all, within ``deadline`` s, ``timeout`` per request."""

    clients: int = 16
    pulls: int = 120
    deadline: float = 90.0
    timeout: float = 30.0
    warmup: int = 2
    pushers: int = 0  # clients pushing a fresh one-layer image after another, beside the pullers


@dataclass
class LoadRun:
    """What the clients saw: every pull, and the wall time from the first start to the last end."""

    plan: LoadPlan
    wall: float = 0.0
    pulls: list[PullResult] = field(default_factory=list)
    unstarted: int = 0  # pulls the deadline left out
    pushes: list[PullResult] = field(default_factory=list)  # one step each: "push"


def push_until(
    stop: threading.Event, base_url: str, image: PulledImage, credentials: Credentials, n: int, timeout: float
) -> list[PullResult]:
    """Push fresh one-layer images to ``<repository>-push`` until ``stop`` is set; each push timed, a
    failed one followed by a second's pause (never a tight loop against the registry measured)."""
    results: list[PullResult] = []
    with RegistryApi(base_url, auth=(credentials.user, credentials.password), timeout=timeout) as api:
        while not stop.is_set():
            result, start = PullResult(), time.perf_counter()
            try:
                tag = f"p{n}-{len(results)}"
                push_image(api, f"{image.repository}-push", tag, layers=1, layer_bytes=PUSH_LAYER_BYTES)
                result.ok = True
            except Exception as error:
                result.error = f"{type(error).__name__}: {error}"
            result.seconds = time.perf_counter() - start
            result.steps["push"] = [result.seconds]
            results.append(result)
            if not result.ok:
                stop.wait(1.0)
    return results


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

    stop = threading.Event()
    with ThreadPoolExecutor(plan.clients + plan.pushers) as pool:
        pushing = [
            pool.submit(push_until, stop, base_url, image, credentials, n, plan.timeout) for n in range(plan.pushers)
        ]
        try:
            for pulling in [pool.submit(client) for _ in range(plan.clients)]:
                pulling.result()
            run.wall = time.perf_counter() - start
        finally:
            stop.set()
        for pushed in pushing:
            run.pushes.extend(pushed.result())
    run.unstarted = plan.pulls - len(run.pulls)
    return run


def run_load(base_url: str, image: PulledImage, credentials: Credentials, plan: LoadPlan) -> LoadRun:
    """``run_clients`` in a spawned child process, so the load's CPU is never the caller's."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(run_clients, base_url, image, credentials, plan).result()
