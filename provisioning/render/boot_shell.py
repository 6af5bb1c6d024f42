"""The boot script's fixed bash text, by concern: the prologue, the common functions (logging, retries,
SSM, the legacy key, images), the metadata service, each DNS mode's ``update_dns``, and the functions that
start a container. No value from the spec appears here: the script's values block assigns them.
"""

from __future__ import annotations

import shlex
from typing import Final

from provisioning.render.container import HTTP_SECRET_ENV, S3_ACCESS_KEY_ENV, S3_SECRET_KEY_ENV, ContainerRun

PROLOGUE: Final = """\
#!/bin/bash
# spotreg boot script, rendered from the deployment's spec: do not edit on the instance.
# Run on every start of {unit}, so on every boot:
#   {script}          fetch secrets, update DNS, run the registry in the foreground
#   {script} refresh  the users from SSM again (started by {timer})
{usage_lines}set -euo pipefail
shopt -s inherit_errexit
umask 077
"""

_COMMON = """\
log() { printf 'spotreg-boot: %s\\n' "$*" >&2; }

# retry N CMD...: run CMD until it succeeds, pausing 2, 4, 8 ... 30 s; failures log CMD (never a secret).
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

# fetch_parameter NAME FILE: an SSM parameter into FILE (mode 0600), replaced atomically if changed.
fetch_parameter() {
    local value temporary
    value=$(retry "$RETRY_ATTEMPTS" ssm_value "$1")
    [[ -f $2 && $(< "$2") == "$value" ]] && return
    install -d -m 0700 "$(dirname "$2")"
    temporary=$(mktemp "$2.XXXXXX")
    printf '%s\\n' "$value" > "$temporary"
    mv -f "$temporary" "$2"
    log "$1 -> $2"
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

IMDS_FUNCTIONS: Final = """\
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

ROUTE53_FUNCTIONS: Final = """\
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

NAMECHEAP_FUNCTIONS: Final = """\
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


def common_functions() -> str:
    """The functions every boot script has, with the container's environment variable names filled in."""
    return (
        _COMMON.replace("@SECRET_ENV@", HTTP_SECRET_ENV)
        .replace("@ACCESS_ENV@", S3_ACCESS_KEY_ENV)
        .replace("@SECRET_KEY_ENV@", S3_SECRET_KEY_ENV)
    )


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


def start_function(function: str, run: ContainerRun, container: str, image: str, prepare: str = "") -> str:
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
