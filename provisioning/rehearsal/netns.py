"""Sockets and commands in a container's network namespace, from this (host) process.

The box's metadata service and its way to moto's server are host processes' sockets that live in the
box's network namespace: a thread enters the namespace (``setns`` changes only the calling thread),
binds a listening socket there, and leaves; the socket stays in that namespace for good while this
process serves it with the host's view of the network (moto's server on the host's loopback).
"""

from __future__ import annotations

import ctypes
import os
import socket
import subprocess
import threading
from pathlib import Path
from typing import Final

_CLONE_NEWNET: Final = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"setns(CLONE_NEWNET) failed: {os.strerror(error)} (needs root)")


def listen_in(pid: int, address: str, port: int) -> socket.socket:
    """A TCP socket listening on ``address:port`` in the network namespace of process ``pid``."""
    result: list[socket.socket | BaseException] = []

    def bind() -> None:
        own = os.open(f"/proc/self/task/{threading.get_native_id()}/ns/net", os.O_RDONLY)
        target = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
        try:
            _setns(target)
            try:
                listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                listener.bind((address, port))
                listener.listen(128)
                result.append(listener)
            finally:
                _setns(own)
        except BaseException as error:  # handed to the caller's thread
            result.append(error)
        finally:
            os.close(own)
            os.close(target)

    thread = threading.Thread(target=bind, name=f"netns-bind-{pid}")
    thread.start()
    thread.join()
    outcome = result[0]
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


def run_in(pid: int, argv: list[str]) -> str:
    """Run a host command (``ip``, say) in the network namespace of process ``pid``; its output."""
    if not Path(f"/proc/{pid}/ns/net").exists():
        raise OSError(f"no process {pid}: its network namespace is gone")
    result = subprocess.run(
        ["nsenter", f"--net=/proc/{pid}/ns/net", "--", *argv], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise OSError(f"{' '.join(argv)} in the namespace of {pid} failed: {result.stderr.strip()}")
    return result.stdout
