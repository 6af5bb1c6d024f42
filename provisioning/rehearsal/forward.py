"""A TCP forwarder: connections accepted on one listening socket are relayed to a fixed target.

The box reaches moto's server (and a test's fault proxy) this way: the listener lives in the box's
network namespace at the same ``127.0.0.1:<port>`` the server has on the host, so one endpoint URL
means the same server on both sides.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Final

_BUFFER: Final = 256 * 1024


class Forwarder:
    """Relay every connection accepted on ``listener`` to ``target`` until closed."""

    def __init__(self, listener: socket.socket, target: tuple[str, int]) -> None:
        self.listener = listener
        self.target = target
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        threading.Thread(target=self._accept, daemon=True, name=f"forward-{target[1]}").start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=10)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        with self._lock:
            self._open.update((client, upstream))
        other = threading.Thread(target=self._pump, args=(upstream, client), daemon=True)
        other.start()
        self._pump(client, upstream)
        other.join()
        for sock in (client, upstream):
            with self._lock:
                self._open.discard(sock)
            with contextlib.suppress(OSError):
                sock.close()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        """Copy until ``source`` ends, then end ``sink``'s writing half."""
        try:
            while data := source.recv(_BUFFER):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        """Stop accepting and reset every open connection."""
        self._closed.set()
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() that close() alone would leave
        with contextlib.suppress(OSError):
            self.listener.close()
        with self._lock:
            sockets, self._open = list(self._open), set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()
