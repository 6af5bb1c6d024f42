"""One HTTP response of the metadata service, and the error answers IMDS gives."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Answer:
    """One HTTP response of the service."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def text(status: int, body: str, **headers: str) -> Answer:
    """An answer whose body is ``body``, UTF-8."""
    return Answer(status, body.encode(), dict(headers))


BAD_REQUEST = text(400, "400 - Bad Request")
UNAUTHORIZED = text(401, "401 - Unauthorized")
FORBIDDEN = text(403, "403 - Forbidden")
NOT_FOUND = text(404, "404 - Not Found")
NOT_ALLOWED = text(405, "405 - Method Not Allowed", Allow="GET, HEAD, PUT")
