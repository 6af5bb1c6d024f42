"""Check 1: the server's TLS chain verifies for the endpoint's host name, and its leaf certificate has
more than ``min_cert_days`` left."""

from __future__ import annotations

import socket
import ssl
import time
from datetime import UTC, datetime

from cryptography import x509
from cryptography.x509.oid import NameOID

from harness.smoke.result import TLS_CHAIN, CheckResult
from harness.smoke.target import SmokeTarget
from harness.smoke.transport import attempts, plain_http_hint

_SECONDS_PER_DAY = 86400.0


def _peer_certificate_der(target: SmokeTarget, context: ssl.SSLContext) -> bytes:
    """The leaf certificate the server presents, after a handshake with ``context``.

    Retries failures to connect (refused, timed out); never a TLS failure, which is the answer.
    """
    attempts = target.connect_retries + 1
    for attempt in range(attempts):
        try:
            with (
                socket.create_connection((target.connect_host, target.port), timeout=target.connect_timeout) as raw,
                context.wrap_socket(raw, server_hostname=target.host) as tls,
            ):
                der = tls.getpeercert(binary_form=True)
                if not der:
                    raise ssl.SSLError("the server presented no certificate")
                return der
        except ssl.SSLError:
            raise
        except OSError:
            if attempt + 1 >= attempts:
                raise
            time.sleep(0.3 * 2**attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def _unverified_context() -> ssl.SSLContext:
    """For reading the certificate of a server whose chain did not verify (to say when it expires)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _common_name(certificate: x509.Certificate) -> str:
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else certificate.subject.rfc4514_string() or "(no subject)"


def _lifetime(certificate: x509.Certificate, now: datetime) -> tuple[float, str]:
    """(days left, negative once expired; the expiry as ``2025-03-01 12:00 UTC``)."""
    expires = certificate.not_valid_after_utc
    return (expires - now).total_seconds() / _SECONDS_PER_DAY, expires.strftime("%Y-%m-%d %H:%M UTC")


def _days(days: float) -> str:
    whole = int(days)
    return f"{whole} day" if whole == 1 else f"{whole} days"


def _lifetime_phrase(days: float, expires: str) -> str:
    if days < 0:
        return f"leaf certificate expired {expires} ({_days(-days)} ago)"
    return f"{_days(days)} left (expires {expires})"


def check_tls_chain(target: SmokeTarget, *, now: datetime | None = None) -> CheckResult:
    """The chain verifies against the system CAs or ``ca_file``, for the endpoint's host name, and
    the leaf certificate has more than ``min_cert_days`` left. Skipped for plain http."""
    if target.scheme == "http":
        return CheckResult(TLS_CHAIN, None, f"plain http to {target.endpoint} (loopback, insecure flag): no TLS")
    now = now or datetime.now(UTC)
    where = f"{target.host}:{target.port}"
    trust = f"CA file {target.ca_file}" if target.ca_file is not None else "the system CAs"
    context = ssl.create_default_context(cafile=str(target.ca_file) if target.ca_file is not None else None)
    try:
        der = _peer_certificate_der(target, context)
    except ssl.SSLCertVerificationError as error:
        detail = f"chain does not verify against {trust}: {error.verify_message}"
        try:
            leaf = x509.load_der_x509_certificate(_peer_certificate_der(target, _unverified_context()))
        except (OSError, ValueError):
            return CheckResult(TLS_CHAIN, False, detail)
        days, expires = _lifetime(leaf, now)
        return CheckResult(TLS_CHAIN, False, f"{detail}; {_lifetime_phrase(days, expires)}")
    except ssl.SSLError as error:
        reason = error.reason or str(error)
        return CheckResult(TLS_CHAIN, False, f"TLS handshake with {where} failed: {reason}{plain_http_hint(reason)}")
    except OSError as error:
        return CheckResult(TLS_CHAIN, False, f"cannot connect to {where}{attempts(target)}: {error}")
    leaf = x509.load_der_x509_certificate(der)
    days, expires = _lifetime(leaf, now)
    if days <= target.min_cert_days:
        return CheckResult(
            TLS_CHAIN,
            False,
            f"{_lifetime_phrase(days, expires)}: fewer than the {target.min_cert_days} required "
            f"(leaf {_common_name(leaf)!r}); renew the certificate",
        )
    return CheckResult(
        TLS_CHAIN,
        True,
        f"{_lifetime_phrase(days, expires)}, more than {target.min_cert_days} required; "
        f"chain of {_common_name(leaf)!r} verifies against {trust}",
    )
