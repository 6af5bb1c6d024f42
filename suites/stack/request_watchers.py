"""What the dress rehearsal watches, never changes: the Route 53 changes a process sends through its
boto3 client, and the requests instance boxes send to moto's server through their forwarders."""

from __future__ import annotations

import re
import socket
import threading
from typing import Any
from xml.etree import ElementTree

import pytest

from provisioning.rehearsal.forward import Forwarder


class Route53Changes:
    """The change batches sent through a route53 client, by their Comment ("spotreg up", "spotreg boot", ...)."""

    def __init__(self) -> None:
        self.batches: list[dict[str, Any]] = []

    def __call__(self, params: dict[str, Any], **_: Any) -> None:
        self.batches.append({"HostedZoneId": params.get("HostedZoneId"), **params.get("ChangeBatch", {})})

    def commented(self, comment: str) -> list[dict[str, Any]]:
        return [batch for batch in self.batches if batch.get("Comment") == comment]


_ROUTE53_XMLNS = {"r": "https://route53.amazonaws.com/doc/2013-04-01/"}
_RRSET_PATH = re.compile(r"^/2013-04-01/hostedzone/(?P<zone>[^/?]+)/rrset/?$")
_KEPT_PER_CONNECTION = 64 * 1024  # a Route 53 call is a few KiB; registry blobs to S3 are not kept


class BoxRequests:
    """What instance boxes send to moto's server, read off the forwarder that relays each connection
    from the box's network namespace to the server (``provisioning.rehearsal.forward``): watched, never
    changed. ``route53_changes()`` are the ChangeResourceRecordSets batches among them."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._lock = threading.Lock()
        self._streams: list[bytearray] = []

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        pump = Forwarder._pump

        def tapped(source: socket.socket, sink: socket.socket) -> None:
            try:
                inbound = source.getsockname()[1] == self.port  # the box's side of a connection to moto
            except OSError:
                inbound = False
            pump(_Tap(source, self._stream()) if inbound else source, sink)  # type: ignore[arg-type]

        monkeypatch.setattr(Forwarder, "_pump", staticmethod(tapped))

    def _stream(self) -> bytearray:
        stream = bytearray()
        with self._lock:
            self._streams.append(stream)
        return stream

    def requests(self) -> list[tuple[str, str, bytes]]:
        """(method, path, body) of every request whose head and body were kept whole."""
        with self._lock:
            streams = [bytes(stream) for stream in self._streams]
        found = []
        for rest in streams:
            while b"\r\n\r\n" in rest:
                head, rest = rest.split(b"\r\n\r\n", 1)
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                headers = dict(line.split(":", 1) for line in header_lines if ":" in line)
                headers = {key.strip().lower(): value.strip() for key, value in headers.items()}
                length = int(headers.get("content-length", "0"))
                if "chunked" in headers.get("transfer-encoding", "") or len(rest) < length:
                    break  # not kept whole: nothing after it can be told apart
                method, target, _ = request_line.split(" ", 2)
                found.append((method, target, rest[:length]))
                rest = rest[length:]
        return found

    def route53_changes(self) -> list[dict[str, Any]]:
        """The change batches, shaped as boto3's ``change_resource_record_sets`` parameters."""
        batches = []
        for method, target, body in self.requests():
            match = _RRSET_PATH.match(target.split("?", 1)[0])
            if method != "POST" or match is None:
                continue
            root = ElementTree.fromstring(body)  # noqa: S314 - the AWS CLI's request, in the box
            batch = root.find("r:ChangeBatch", _ROUTE53_XMLNS)
            assert batch is not None, body
            changes = []
            for change in batch.iterfind("r:Changes/r:Change", _ROUTE53_XMLNS):
                record = change.find("r:ResourceRecordSet", _ROUTE53_XMLNS)
                assert record is not None, body
                ttl = record.findtext("r:TTL", namespaces=_ROUTE53_XMLNS)
                values = record.iterfind("r:ResourceRecords/r:ResourceRecord/r:Value", _ROUTE53_XMLNS)
                changes.append(
                    {
                        "Action": change.findtext("r:Action", namespaces=_ROUTE53_XMLNS),
                        "ResourceRecordSet": {
                            "Name": record.findtext("r:Name", namespaces=_ROUTE53_XMLNS),
                            "Type": record.findtext("r:Type", namespaces=_ROUTE53_XMLNS),
                            **({"TTL": int(ttl)} if ttl is not None else {}),
                            "ResourceRecords": [{"Value": value.text} for value in values],
                        },
                    }
                )
            comment = batch.findtext("r:Comment", namespaces=_ROUTE53_XMLNS)
            batches.append(
                {"HostedZoneId": match.group("zone"), **({"Comment": comment} if comment else {}), "Changes": changes}
            )
        return batches

    def commented(self, comment: str) -> list[dict[str, Any]]:
        return [batch for batch in self.route53_changes() if batch.get("Comment") == comment]


class _Tap:
    """A socket whose ``recv`` also keeps (up to a bound) what it received."""

    def __init__(self, sock: socket.socket, kept: bytearray) -> None:
        self._sock = sock
        self._kept = kept

    def recv(self, size: int) -> bytes:
        data = self._sock.recv(size)
        room = _KEPT_PER_CONNECTION - len(self._kept)
        if room > 0:
            self._kept += data[:room]
        return data
