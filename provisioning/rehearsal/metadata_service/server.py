"""The metadata service's HTTP/1.1 server: one daemon thread on a listening socket, ``Server: EC2ws``."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

from provisioning.rehearsal.metadata_service.answer import Answer

#: the answer to (method, path, headers keyed in lower case)
Respond = Callable[[str, str, Mapping[str, str]], Answer]
#: told (method, path, status) of each request, before the client sees the answer
Record = Callable[[str, str, int], None]


class HttpServer:
    """Serves ``respond``'s answers on ``listener`` (bound and listening) from a daemon thread."""

    def __init__(self, listener: socket.socket, respond: Respond, record: Record) -> None:
        server = _Server(listener.getsockname()[:2], _Handler, bind_and_activate=False)
        server.socket.close()  # the one the constructor made: the listener replaces it
        server.socket = listener
        server.respond, server.record = respond, record
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="imds", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop serving and close the listening socket (idle keep-alive connections time out)."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # close() must not wait for clients' idle keep-alive connections
    respond: Respond
    record: Record


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30  # idle keep-alive connections end after this

    def version_string(self) -> str:
        return "EC2ws"

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the service's ``record`` sees every request."""

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > 0:
            self.rfile.read(length)  # a body nobody reads would be taken for the next request
        server = cast(_Server, self.server)
        headers = {name.lower(): value for name, value in self.headers.items()}
        answer = server.respond(self.command, self.path, headers)
        server.record(self.command, self.path, answer.status)  # before the client sees the answer
        self.send_response(answer.status)
        self.send_header("Content-Type", "text/plain")
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body)

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = _dispatch
