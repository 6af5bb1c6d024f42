"""The script the instance runs on every boot (systemd unit ``spotreg-registry.service``).

It fetches the secrets from SSM, points DNS at the instance, and runs the registry in the foreground.
Every value from the spec is assigned once at the top through ``shlex.quote`` and used in double
quotes after that; the rest of the script is fixed text.
"""

from __future__ import annotations

import json
import shlex
from typing import Final

from provisioning import names
from provisioning.render import paths
from provisioning.render.container import (
    HTTP_SECRET_ENV,
    S3_ACCESS_KEY_ENV,
    S3_SECRET_KEY_ENV,
    ContainerRun,
    render_proxy_run,
    render_registry_run,
)
from provisioning.spec import Spec

RETRY_ATTEMPTS: Final = 6  # pauses of 2, 4, 8, 16, 30 s: about a minute per call
VALUES_BEGIN: Final = "# --- values from the spec"
VALUES_END: Final = "# --- end of values"

_PROLOGUE = """\
#!/bin/bash
# spotreg boot script, rendered from the deployment's spec: do not edit on the instance.
# Run on every start of {unit}, so on every boot:
#   {script}          fetch secrets, update DNS, run the registry in the foreground
{proxy_usage}set -euo pipefail
shopt -s inherit_errexit
umask 077
"""

_FUNCTIONS = """\
log() { printf 'spotreg-boot: %s\\n' "$*" >&2; }

# retry ATTEMPTS COMMAND...: run COMMAND until it succeeds, pausing 2, 4, 8, ... (at most 30) s; each
# failure is logged with the command's words (a parameter's name, say: never a secret's value).
retry() {
    local attempts=$1 attempt=1 delay=2
    shift
    until "$@"; do
        if (( attempt >= attempts )); then
            log "giving up after ${attempts} attempts: $*"
            return 1
        fi
        log "attempt ${attempt} of ${attempts} failed: $*; next in ${delay}s"
        sleep "$delay"
        attempt=$(( attempt + 1 ))
        delay=$(( delay * 2 > 30 ? 30 : delay * 2 ))
    done
}

# ssm_value NAME: print a (SecureString) parameter, decrypted.
ssm_value() {
    aws ssm get-parameter --region "$REGION" --name "$1" --with-decryption \\
        --query Parameter.Value --output text
}

# fetch_parameter NAME FILE: an SSM parameter into FILE (mode 0600), replaced atomically.
fetch_parameter() {
    local value
    value=$(retry "$RETRY_ATTEMPTS" ssm_value "$1")
    install -d -m 0700 "$(dirname "$2")"
    printf '%s\\n' "$value" > "$2.new"
    chmod 0600 "$2.new"
    mv -f "$2.new" "$2"
}

# ensure_http_secret: the registry's http.secret, made once and kept across boots.
ensure_http_secret() {
    if [[ ! -s $HTTP_SECRET_FILE ]]; then
        head -c 32 /dev/urandom | od -An -v -tx1 | tr -d ' \\n' > "$HTTP_SECRET_FILE.new"
        chmod 0600 "$HTTP_SECRET_FILE.new"
        mv -f "$HTTP_SECRET_FILE.new" "$HTTP_SECRET_FILE"
    fi
    @SECRET_ENV@=$(< "$HTTP_SECRET_FILE")
    export @SECRET_ENV@
}

# legacy_key_value: the legacy-mode access key parameter's value; nothing when up stored none
# (ParameterNotFound: the default, the registry uses the instance profile).
legacy_key_value() {
    local value errors status=0
    errors=$(mktemp)
    value=$(ssm_value "$LEGACY_KEY_PARAMETER" 2> "$errors") || status=$?
    if (( status == 0 )); then
        printf '%s\n' "$value"
    elif ! grep -q ParameterNotFound "$errors"; then
        log "reading ${LEGACY_KEY_PARAMETER} failed: $(< "$errors")"
    else
        status=0
    fi
    rm -f "$errors"
    return "$status"
}

# load_legacy_key: in legacy mode hand the stored IAM user key to the registry's S3 driver, by
# environment only (the container gets "-e NAME", never the value).
load_legacy_key() {
    local value
    value=$(retry "$RETRY_ATTEMPTS" legacy_key_value)
    if [[ -z $value ]]; then
        log "no legacy access key: the registry uses the instance profile"
        return 0
    fi
    @ACCESS_ENV@=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["access_key_id"])' <<< "$value")
    @SECRET_KEY_ENV@=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["secret_access_key"])' <<< "$value")
    export @ACCESS_ENV@ @SECRET_KEY_ENV@
    log "legacy mode: the registry uses the long-lived access key in ${LEGACY_KEY_PARAMETER}"
}

# ensure_image IMAGE: pull IMAGE unless the engine has it.
ensure_image() {
    docker image inspect "$1" > /dev/null 2>&1 || retry "$RETRY_ATTEMPTS" docker pull "$1"
}
"""

_IMDS = """\
# imds_get PATH: one instance metadata item, IMDSv2 only (session token first).
imds_get() {
    local token
    token=$(curl -fsS --max-time 5 -X PUT 'http://169.254.169.254/latest/api/token' \\
        -H 'X-aws-ec2-metadata-token-ttl-seconds: 300') || return 1
    curl -fsS --max-time 5 -H "X-aws-ec2-metadata-token: ${token}" \\
        "http://169.254.169.254/latest/meta-data/$1"
}

# public_ipv4: the instance's public IPv4 address, checked to be one.
public_ipv4() {
    local ip
    ip=$(retry "$RETRY_ATTEMPTS" imds_get public-ipv4)
    if [[ ! $ip =~ ^[0-9]{1,3}(\\.[0-9]{1,3}){3}$ ]]; then
        log "the metadata service answered no public IPv4 address: '${ip}'"
        return 1
    fi
    printf '%s\\n' "$ip"
}
"""

_ROUTE53 = """\
# route53_upsert IP: point the A record of the host name at IP (TTL 60).
route53_upsert() {
    local batch
    batch=$(cat <<EOF
{
  "Comment": "spotreg boot",
  "Changes": [{
    "Action": "UPSERT",
    "ResourceRecordSet": {
      "Name": ${RECORD_NAME_JSON},
      "Type": "A",
      "TTL": 60,
      "ResourceRecords": [{"Value": "$1"}]
    }
  }]
}
EOF
)
    aws route53 change-resource-record-sets --region "$REGION" --hosted-zone-id "$ZONE_ID" \\
        --change-batch "$batch" --query ChangeInfo.Id --output text > /dev/null
}

update_dns() {
    local ip
    ip=$(public_ipv4)
    retry "$RETRY_ATTEMPTS" route53_upsert "$ip"
    log "${DNS_HOSTNAME} -> ${ip} (Route 53)"
}
"""

_NAMECHEAP = """\
# namecheap_update IP: Namecheap dynamic DNS; its answer must report no error.
namecheap_update() {
    local answer
    answer=$(curl -fsS --max-time 30 --get 'https://dynamicdns.park-your-domain.com/update' \\
        --data-urlencode "host=${DDNS_HOST}" --data-urlencode "domain=${DDNS_DOMAIN}" \\
        --data-urlencode "password@${DNS_PASSWORD_FILE}" --data-urlencode "ip=$1") || return 1
    if [[ $answer != *'<ErrCount>0</ErrCount>'* ]]; then
        log "Namecheap refused the update: ${answer}"
        return 1
    fi
}

update_dns() {
    local ip password
    ip=$(public_ipv4)
    password=$(retry "$RETRY_ATTEMPTS" ssm_value "$DNS_PASSWORD_PARAMETER")
    install -d -m 0700 "$(dirname "$DNS_PASSWORD_FILE")"
    printf '%s' "$password" > "$DNS_PASSWORD_FILE"  # no newline: curl would send it
    chmod 0600 "$DNS_PASSWORD_FILE"
    retry "$RETRY_ATTEMPTS" namecheap_update "$ip"
    log "${DNS_HOSTNAME} -> ${ip} (Namecheap)"
}
"""


def legacy_key_parameter(spec: Spec) -> str:
    """Where legacy mode (`up(legacy_access_key=True)`) stores the IAM user's access key, as JSON."""
    return f"{names.parameter_prefix(spec)}/legacy-access-key"


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
        "LEGACY_KEY_PARAMETER": legacy_key_parameter(spec),
        "REGISTRY_CONTAINER": names.CONTAINER_NAME,
        "REGISTRY_IMAGE": spec.registry.image,
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


def _argv_lines(run: ContainerRun) -> list[str]:
    """``docker run``'s words, shell-quoted: each option with its value on a line, the image with its args."""
    argv = run.docker_run_argv()
    image_at = len(argv) - len(run.args) - 1
    lines: list[list[str]] = [list(argv[:2])]
    for word in argv[2:image_at]:
        if word.startswith("-"):
            lines.append([word])
        else:
            lines[-1].append(word)
    lines.append(list(argv[image_at:]))
    return [shlex.join(line) for line in lines]


def _start_function(function: str, run: ContainerRun, container: str, image: str, prepare: str = "") -> str:
    """A function that replaces any old container and execs ``docker run`` (an option a line)."""
    return "\n".join(
        [
            f"{function}() {{",
            *([f"    {prepare}"] if prepare else []),
            f'    ensure_image "${image}"',
            f'    docker rm -f "${container}" > /dev/null 2>&1 || true',
            "    local -a run=(",
            *(f"        {line}" for line in _argv_lines(run)),
            "    )",
            '    exec "${run[@]}"',
            "}",
            "",
        ]
    )


def render_boot_script(spec: Spec) -> str:
    """The bash script of ``spotreg-registry.service`` (with argument ``proxy``: of the proxy's unit)."""
    dns = spec.dns.mode in ("route53", "namecheap")
    proxy = render_proxy_run(spec)
    script = names.BOOT_SCRIPT_PATH
    proxy_usage = f"#   {script} proxy    run the Let's Encrypt proxy in the foreground ({paths.PROXY_UNIT})\n"
    values = boot_script_values(spec)
    parts = [
        _PROLOGUE.format(unit=paths.REGISTRY_UNIT, script=script, proxy_usage=proxy_usage if proxy else ""),
        "\n".join([VALUES_BEGIN, *(f"readonly {k}={shlex.quote(v)}" for k, v in values.items()), VALUES_END]) + "\n",
        _FUNCTIONS.replace("@SECRET_ENV@", HTTP_SECRET_ENV)
        .replace("@ACCESS_ENV@", S3_ACCESS_KEY_ENV)
        .replace("@SECRET_KEY_ENV@", S3_SECRET_KEY_ENV),
    ]
    if dns:
        parts += [_IMDS, _ROUTE53 if spec.dns.mode == "route53" else _NAMECHEAP]
    parts.append(_start_function("start_registry", render_registry_run(spec), "REGISTRY_CONTAINER", "REGISTRY_IMAGE"))
    if proxy is not None:
        prepare = 'install -d -m 0700 "$CADDY_STATE_DIR/data" "$CADDY_STATE_DIR/config"'
        parts.append(_start_function("start_proxy", proxy, "PROXY_CONTAINER", "PROXY_IMAGE", prepare))

    steps = ['fetch_parameter "$HTPASSWD_PARAMETER" "$HTPASSWD_FILE"']
    if spec.tls.mode == "selfsigned":
        steps.append('fetch_parameter "$TLS_KEY_PARAMETER" "$TLS_KEY_FILE"')
    if dns:
        steps.append("update_dns")
    steps += ["ensure_http_secret", "load_legacy_key", "start_registry"]
    cases = ["        registry)", *(f"            {step}" for step in steps), "            ;;"]
    if proxy is not None:
        cases += ["        proxy)", "            start_proxy", "            ;;"]
    usage = "registry|proxy" if proxy else "registry"
    cases += ["        *)", f'            log "usage: $0 [{usage}]"', "            exit 64", "            ;;"]
    parts.append("\n".join(["main() {", "    case ${1:-registry} in", *cases, "    esac", "}", "", 'main "$@"', ""]))
    return "\n".join(parts)
