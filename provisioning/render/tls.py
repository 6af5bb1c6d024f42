"""Self-signed TLS material: a throwaway CA and the server certificate it signs."""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

RENEW_BEFORE = timedelta(days=30)  # `up` replaces a certificate this close to its end
BACKDATE = timedelta(minutes=5)  # tolerate clocks a little behind ours
MAX_SERVER_DAYS = 397  # the longest server certificate browsers and Apple platforms accept


@dataclass(frozen=True)
class TlsMaterial:
    """PEM bytes: the CA certificate clients trust, the server's certificate and private key."""

    ca_cert_pem: bytes
    server_cert_pem: bytes
    server_key_pem: bytes


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        pass
    if not name or not name.isascii() or any(c.isspace() for c in name):
        raise ValueError(f"not a DNS name or IP address: {name!r}")
    return x509.DNSName(name)


def _serial(*parts: bytes) -> int:
    """A positive 159-bit serial derived from the inputs (deterministic, unique per key and time)."""
    return int.from_bytes(hashlib.sha256(b"\0".join(parts)).digest()[:20], "big") >> 1 or 1


def _public_der(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def render_selfsigned(
    names: Sequence[str],
    *,
    now: datetime,
    days: int = MAX_SERVER_DAYS,
    ca_key: ec.EllipticCurvePrivateKey | None = None,
    server_key: ec.EllipticCurvePrivateKey | None = None,
) -> TlsMaterial:
    """A CA and a server certificate for ``names`` (DNS names and/or IP addresses), valid from
    ``now`` - 5 min for ``days`` days. EC P-256 keys are generated only when not passed in; with
    both keys given the output is byte-for-byte deterministic (RFC 6979 signatures).
    The CA's private key is not returned: nothing else can be signed with it.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if not names:
        raise ValueError("a server certificate needs at least one name")
    if days < 1:
        raise ValueError("days must be at least 1")
    alt_names = [_general_name(name) for name in dict.fromkeys(names)]
    ca_key = ca_key or ec.generate_private_key(ec.SECP256R1())
    server_key = server_key or ec.generate_private_key(ec.SECP256R1())
    not_before, not_after = now - BACKDATE, now + timedelta(days=days)
    stamp = now.isoformat().encode()

    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "spotreg self-signed CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(_serial(b"ca", _public_der(ca_key), stamp))
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256(), ecdsa_deterministic=True)
    )

    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0][:64])])
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(_serial(b"server", _public_der(server_key), _public_der(ca_key), stamp))
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256(), ecdsa_deterministic=True)
    )
    return TlsMaterial(
        ca_cert_pem=ca_cert.public_bytes(serialization.Encoding.PEM),
        server_cert_pem=server_cert.public_bytes(serialization.Encoding.PEM),
        server_key_pem=server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )


def certificate_names(pem: str | bytes) -> list[str]:
    """The DNS names and IP addresses a certificate is for (its subject alternative names)."""
    try:
        certificate = x509.load_pem_x509_certificate(pem.encode() if isinstance(pem, str) else pem)
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return []
    return [str(n) for n in san.get_values_for_type(x509.DNSName)] + [
        str(n) for n in san.get_values_for_type(x509.IPAddress)
    ]


def still_fits(key_pem: str, cert_pem: str, names: Sequence[str], *, now: datetime) -> bool:
    """Whether stored material can be used again: the certificate is for exactly `names`, valid for
    RENEW_BEFORE more, and `key_pem` is its key."""
    try:
        certificate = x509.load_pem_x509_certificate(cert_pem.encode())
        private = serialization.load_pem_private_key(key_pem.encode(), password=None)
    except ValueError:
        return False
    if not isinstance(private, ec.EllipticCurvePrivateKey):
        return False
    same_key = _public_der(private) == certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    fresh = certificate.not_valid_after_utc - now > RENEW_BEFORE
    return same_key and fresh and set(certificate_names(cert_pem)) == set(names)


def reuse_or_renew(names: Sequence[str], stored: tuple[str, str, str] | None, *, now: datetime) -> tuple[str, str, str]:
    """The (key, cert, ca) PEM texts to serve: the `stored` ones while they still fit, else new ones."""
    if stored is not None and still_fits(stored[0], stored[1], names, now=now):
        return stored
    material = render_selfsigned(list(names), now=now)
    return (
        material.server_key_pem.decode("ascii"),
        material.server_cert_pem.decode("ascii"),
        material.ca_cert_pem.decode("ascii"),
    )
