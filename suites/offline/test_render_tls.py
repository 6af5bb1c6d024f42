"""Self-signed TLS material verifies against its CA for its names; the Caddyfile of the ACME proxy."""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from provisioning.render.caddyfile import caddy_token, render_caddyfile
from provisioning.render.tls import render_selfsigned
from provisioning.spec_loading import spec_from_mapping
from suites.offline.render_samples import MODES, NOW, keys, matrix_spec, mode_id, tls_material
from suites.offline.spec_strategies import example_mapping

NAMES = ("registry.example.com", "203.0.113.7", "2001:db8::7")


def verify(material_names: tuple[str, ...], subject: x509.verification.Subject, at: datetime) -> None:
    material = tls_material(*material_names)
    ca = x509.load_pem_x509_certificate(material.ca_cert_pem)
    leaf = x509.load_pem_x509_certificate(material.server_cert_pem)
    verifier = PolicyBuilder().store(Store([ca])).time(at).build_server_verifier(subject)
    verifier.verify(leaf, [])


@pytest.mark.parametrize(
    "subject",
    [
        x509.DNSName("registry.example.com"),
        x509.IPAddress(ipaddress.ip_address("203.0.113.7")),
        x509.IPAddress(ipaddress.ip_address("2001:db8::7")),
    ],
    ids=str,
)
def test_server_certificate_verifies_against_the_ca(subject: x509.verification.Subject) -> None:
    verify(NAMES, subject, NOW)
    verify(NAMES, subject, NOW + timedelta(days=396))
    verify(NAMES, subject, NOW - timedelta(minutes=4))


@pytest.mark.parametrize(
    ("subject", "at"),
    [
        (x509.DNSName("other.example.com"), NOW),
        (x509.IPAddress(ipaddress.ip_address("203.0.113.8")), NOW),
        (x509.DNSName("registry.example.com"), NOW + timedelta(days=398)),
        (x509.DNSName("registry.example.com"), NOW - timedelta(minutes=6)),
    ],
)
def test_server_certificate_does_not_verify_for_other_names_or_times(
    subject: x509.verification.Subject, at: datetime
) -> None:
    with pytest.raises(VerificationError):
        verify(NAMES, subject, at)


def test_certificate_contents_and_key_match() -> None:
    material = tls_material(*NAMES)
    ca = x509.load_pem_x509_certificate(material.ca_cert_pem)
    leaf = x509.load_pem_x509_certificate(material.server_cert_pem)
    key = serialization.load_pem_private_key(material.server_key_pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    assert key.public_key().public_numbers() == leaf.public_key().public_numbers()  # type: ignore[union-attr]
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["registry.example.com"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("203.0.113.7"),
        ipaddress.ip_address("2001:db8::7"),
    ]
    assert leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.SERVER_AUTH]
    )
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign is True
    assert leaf.not_valid_before_utc == NOW - timedelta(minutes=5)
    assert leaf.not_valid_after_utc == NOW + timedelta(days=397)
    assert b"PRIVATE KEY" not in material.ca_cert_pem + material.server_cert_pem
    leaf.verify_directly_issued_by(ca)


def test_deterministic_when_keys_are_given() -> None:
    ca_key, server_key = keys()
    first = render_selfsigned(list(NAMES), now=NOW, ca_key=ca_key, server_key=server_key)
    again = render_selfsigned(list(NAMES), now=NOW, ca_key=ca_key, server_key=server_key)
    assert first == again


def test_keys_are_generated_when_not_given() -> None:
    one = render_selfsigned(["a.example.com"], now=NOW, days=30)
    two = render_selfsigned(["a.example.com"], now=NOW, days=30)
    assert one.server_key_pem != two.server_key_pem
    leaf = x509.load_pem_x509_certificate(one.server_cert_pem)
    assert leaf.not_valid_after_utc == NOW + timedelta(days=30)


@pytest.mark.parametrize(
    ("names", "now", "days"),
    [
        ([], NOW, 397),
        (["registry.example.com"], datetime(2025, 1, 1), 397),  # naive on purpose
        (["registry.example.com"], NOW, 0),
        (["two words"], NOW, 397),
        (["ünïcode.example"], NOW, 397),
    ],
)
def test_bad_arguments_are_refused(names: list[str], now: datetime, days: int) -> None:
    ca_key, server_key = keys()
    with pytest.raises(ValueError):
        render_selfsigned(names, now=now, days=days, ca_key=ca_key, server_key=server_key)


# --- Caddyfile ------------------------------------------------------------------------------------


def test_caddyfile_for_letsencrypt() -> None:
    spec = spec_from_mapping(
        example_mapping(
            tls={"mode": "letsencrypt", "email": "ops@example.com"},
            registry={"port": 5000},
            network={"operator_cidrs": ["203.0.113.7/32", "2001:db8::/48"]},
        )
    )
    assert render_caddyfile(spec) == (
        "{\n"
        "    admin off\n"
        "    acme_ca {$SPOTREG_ACME_DIRECTORY:https://acme-v02.api.letsencrypt.org/directory}\n"
        "    email ops@example.com\n"
        "    cert_issuer acme {\n"
        "        disable_tlsalpn_challenge\n"
        "    }\n"
        "}\n"
        "\n"
        "registry.example.com {\n"
        "    @outsiders not remote_ip 203.0.113.7/32 2001:db8::/48\n"
        "    abort @outsiders\n"
        "    reverse_proxy 127.0.0.1:5000 {\n"
        "        header_up X-Forwarded-Proto {scheme}\n"
        "    }\n"
        "}\n"
    )


def test_caddyfile_open_to_the_world_has_no_address_filter_and_email_is_optional() -> None:
    spec = spec_from_mapping(
        example_mapping(
            tls={"mode": "letsencrypt"}, registry={"port": 5000}, network={"operator_cidrs": ["0.0.0.0/0", "::/0"]}
        )
    )
    text = render_caddyfile(spec)
    assert "remote_ip" not in text and "abort" not in text and "email" not in text


@pytest.mark.parametrize("modes", [m for m in MODES if m[0] != "letsencrypt"], ids=mode_id)
def test_caddyfile_only_for_letsencrypt(modes: tuple[str, str]) -> None:
    with pytest.raises(ValueError):
        render_caddyfile(matrix_spec(modes))


@pytest.mark.parametrize(
    ("value", "token"),
    [
        ("registry.example.com", "registry.example.com"),
        ("a+b%c@example.com", "a+b%c@example.com"),
        ("registry.example.com\n", '"registry.example.com\n"'),
        ('say "hi"\\', '"say \\"hi\\"\\\\"'),
        ("", '""'),
    ],
)
def test_caddy_tokens_stay_one_token(value: str, token: str) -> None:
    assert caddy_token(value) == token
