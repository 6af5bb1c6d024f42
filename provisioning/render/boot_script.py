"""The script the instance runs on every boot (systemd unit ``spotreg-registry.service``).

It fetches the secrets from SSM, points DNS at the instance, and runs the registry in the foreground;
with argument ``refresh`` (``spotreg-refresh.timer``, every minute) it re-reads the users from SSM.
Every value from the spec is assigned once at the top through ``shlex.quote`` and used in double
quotes after that; the rest of the script is fixed text.
"""

from __future__ import annotations

import json
import shlex
from typing import Final

from provisioning import names
from provisioning.render import paths
from provisioning.render.boot_shell import (
    IMDS_FUNCTIONS,
    NAMECHEAP_FUNCTIONS,
    PROLOGUE,
    ROUTE53_FUNCTIONS,
    common_functions,
    start_function,
)
from provisioning.render.container import render_front_run, render_proxy_run, render_registry_run
from provisioning.spec import Spec

RETRY_ATTEMPTS: Final = 6  # pauses of 2, 4, 8, 16, 30 s: about a minute per call
VALUES_BEGIN: Final = "# --- values from the spec"
VALUES_END: Final = "# --- end of values"


def namecheap_host_and_domain(hostname: str, domain: str | None = None) -> tuple[str, str]:
    """Namecheap's (host, domain) for a name: `domain` (default: the last two labels), "@" its apex."""
    if domain is None:
        domain = ".".join(hostname.split(".")[-2:])
    return hostname.removesuffix(domain).rstrip(".") or "@", domain


def boot_script_values(spec: Spec) -> dict[str, str]:
    """The shell variables the script assigns from the spec, by name, in script order."""
    values = {
        "REGION": spec.deployment.region,
        "RETRY_ATTEMPTS": str(RETRY_ATTEMPTS),
        "HTPASSWD_PARAMETER": names.htpasswd_parameter(spec),
        "HTPASSWD_FILE": names.HTPASSWD_PATH,
        "HTTP_SECRET_FILE": paths.HTTP_SECRET_PATH,
        "LEGACY_KEY_PARAMETER": names.legacy_key_parameter(spec),
        "REGISTRY_CONTAINER": names.CONTAINER_NAME,
        "REGISTRY_IMAGE": spec.registry.image,
        "REGISTRY_URL": f"http://{paths.REGISTRY_ADDR}/v2/",
        "FRONT_CONTAINER": names.FRONT_CONTAINER_NAME,
        "FRONT_IMAGE": spec.registry.front_image,
    }
    if spec.tls.mode == "selfsigned":
        values["TLS_KEY_PARAMETER"] = names.tls_key_parameter(spec)
        values["TLS_KEY_FILE"] = paths.TLS_KEY_PATH
    if spec.tls.mode == "letsencrypt":
        values["PROXY_CONTAINER"] = names.PROXY_CONTAINER_NAME
        values["PROXY_IMAGE"] = spec.tls.proxy_image
        values["CADDY_STATE_DIR"] = paths.CADDY_STATE_DIR
    hostname = spec.dns.hostname
    if spec.dns.mode == "route53":
        assert hostname is not None and spec.dns.zone_id is not None  # the Spec's rules
        values["DNS_HOSTNAME"] = hostname
        values["RECORD_NAME_JSON"] = json.dumps(hostname)
        values["ZONE_ID"] = spec.dns.zone_id
    elif spec.dns.mode == "namecheap":
        assert hostname is not None  # the Spec's rules
        values["DNS_HOSTNAME"] = hostname
        values["DDNS_HOST"], values["DDNS_DOMAIN"] = namecheap_host_and_domain(hostname, spec.dns.domain)
        values["DNS_PASSWORD_PARAMETER"] = names.dns_password_parameter(spec)
        values["DNS_PASSWORD_FILE"] = paths.DNS_PASSWORD_PATH
    return values


def render_boot_script(spec: Spec) -> str:
    """The bash script of ``spotreg-registry.service`` (argument ``refresh``: of the refresh timer's
    service; ``front``: of the front's unit; ``proxy``: of the proxy's unit)."""
    dns = spec.dns.mode in ("route53", "namecheap")
    proxy = render_proxy_run(spec)
    script = names.BOOT_SCRIPT_PATH
    usage_lines = f"#   {script} front    run the front (nginx) in the foreground ({paths.FRONT_UNIT})\n"
    if proxy:
        usage_lines += f"#   {script} proxy    run the Let's Encrypt proxy in the foreground ({paths.PROXY_UNIT})\n"
    values = boot_script_values(spec)
    parts = [
        PROLOGUE.format(
            unit=paths.REGISTRY_UNIT,
            script=script,
            timer=paths.REFRESH_TIMER,
            usage_lines=usage_lines,
        ),
        "\n".join([VALUES_BEGIN, *(f"readonly {k}={shlex.quote(v)}" for k, v in values.items()), VALUES_END]) + "\n",
        common_functions(),
    ]
    if dns:
        parts += [IMDS_FUNCTIONS, ROUTE53_FUNCTIONS if spec.dns.mode == "route53" else NAMECHEAP_FUNCTIONS]
    parts.append(start_function("start_registry", render_registry_run(spec), "REGISTRY_CONTAINER", "REGISTRY_IMAGE"))
    # The front starts once the users (and the TLS key) are on disk and the registry answers.
    ready = ["[[ -s $HTPASSWD_FILE ]]", *(["[[ -s $TLS_KEY_FILE ]]"] if spec.tls.mode == "selfsigned" else [])]
    ready.append('curl -fso /dev/null --max-time 2 "$REGISTRY_URL"')
    wait = f'log "front: waiting for the users and the registry"\n    until {" && ".join(ready)}; do sleep 1; done'
    parts.append(start_function("start_front", render_front_run(spec), "FRONT_CONTAINER", "FRONT_IMAGE", wait))
    if proxy is not None:
        prepare = 'install -d -m 0700 "$CADDY_STATE_DIR/data" "$CADDY_STATE_DIR/config"'
        parts.append(start_function("start_proxy", proxy, "PROXY_CONTAINER", "PROXY_IMAGE", prepare))

    steps = ['fetch_parameter "$HTPASSWD_PARAMETER" "$HTPASSWD_FILE"']
    if spec.tls.mode == "selfsigned":
        steps.append('fetch_parameter "$TLS_KEY_PARAMETER" "$TLS_KEY_FILE"')
    if dns:
        steps.append("update_dns")
    steps += ["ensure_http_secret", "load_legacy_key", "start_registry"]
    cases = ["        registry)", *(f"            {step}" for step in steps), "            ;;"]
    cases += ["        refresh)", f"            {steps[0]}", "            ;;"]
    cases += ["        front)", "            start_front", "            ;;"]
    if proxy is not None:
        cases += ["        proxy)", "            start_proxy", "            ;;"]
    usage = "registry|refresh|front|proxy" if proxy else "registry|refresh|front"
    cases += ["        *)", f'            log "usage: $0 [{usage}]"', "            exit 64", "            ;;"]
    parts.append("\n".join(["main() {", "    case ${1:-registry} in", *cases, "    esac", "}", "", 'main "$@"', ""]))
    return "\n".join(parts)
