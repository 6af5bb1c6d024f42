"""Namecheap dynamic DNS: one HTTP GET, answered with XML whose `ErrCount` says whether it worked.

The base URL is a parameter so tests answer from a local server on 127.0.0.1.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from urllib.parse import quote, quote_plus

import requests

from provisioning.errors import DnsError
from provisioning.render.boot_script import namecheap_host_and_domain

NAMECHEAP_DDNS_URL = "https://dynamicdns.park-your-domain.com/update"
_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>", re.IGNORECASE)


@dataclass(frozen=True)
class NamecheapAnswer:
    ip: str | None
    errors: tuple[str, ...]
    done: bool

    @property
    def ok(self) -> bool:
        return not self.errors


def split_hostname(hostname: str, domain: str | None = None) -> tuple[str, str]:
    """Namecheap's (host, domain), split as the instance's boot script splits it."""
    return namecheap_host_and_domain(hostname, domain)


def parse_answer(text: str) -> NamecheapAnswer:
    """Parse the XML answer. Namecheap declares `encoding="utf-16"` but sends UTF-8, so the
    declaration is dropped before parsing."""
    body = _DECLARATION.sub("", text, count=1).strip()
    try:
        root = ET.fromstring(body)  # noqa: S314 - a short answer from the DNS provider
    except ET.ParseError as error:
        raise DnsError("namecheap", "", [f"unreadable answer ({error}): {text[:200]!r}"]) from None
    count_text = root.findtext("ErrCount")
    if count_text is None or not count_text.strip().isdigit():
        raise DnsError("namecheap", "", [f"answer without ErrCount: {text[:200]!r}"])
    count = int(count_text.strip())
    errors: list[str] = []
    holder = root.find("errors")
    if holder is not None:
        errors = [(child.text or "").strip() or child.tag for child in holder]
    if count and not errors:
        errors = [f"ErrCount {count}"]
    if not count:
        errors = []
    return NamecheapAnswer(
        ip=(root.findtext("IP") or "").strip() or None,
        errors=tuple(errors),
        done=(root.findtext("Done") or "").strip().lower() == "true",
    )


def update_namecheap(
    hostname: str,
    password: str,
    ip: str,
    *,
    domain: str | None = None,
    base_url: str = NAMECHEAP_DDNS_URL,
    session: requests.Session | None = None,
    timeout: float = 15.0,
) -> NamecheapAnswer:
    """Point `hostname` at `ip`; raise DnsError with Namecheap's own messages when it refuses."""
    host, domain = split_hostname(hostname, domain)
    http = session or requests.Session()
    try:
        response = http.get(
            base_url, params={"host": host, "domain": domain, "password": password, "ip": ip}, timeout=timeout
        )
    except requests.RequestException as error:
        message = str(error)
        for secret in {password, quote_plus(password), quote(password, safe="")}:
            message = message.replace(secret, "***")  # the password travels in the query string
        raise DnsError("namecheap", hostname, [f"{type(error).__name__}: {message}"]) from None
    finally:
        if session is None:
            http.close()
    if response.status_code != 200:
        raise DnsError("namecheap", hostname, [f"HTTP {response.status_code}: {response.text[:200]!r}"])
    try:
        answer = parse_answer(response.text)
    except DnsError as error:
        raise DnsError("namecheap", hostname, error.errors) from None
    if not answer.ok:
        raise DnsError("namecheap", hostname, answer.errors)
    return answer
