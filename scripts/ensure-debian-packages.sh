#!/usr/bin/env bash
# Install the Debian packages the harness uses, where that is possible (Debian/Ubuntu, root).
#
#   stack tier (a Docker engine, the registry and busybox the images are built from, mmdebstrap for
#   the instance box's root filesystem):
#       docker.io docker-registry busybox-static mmdebstrap iproute2 (the box's metadata address)
#       caddy (the letsencrypt proxy image) pebble (the ACME server letsencrypt boxes get certificates from)
#       nginx (the front image; its service is neither started nor left enabled here)
#   optional (the tests that need them skip without them):
#       cloud-init (cloud-config schema check) shellcheck (user-data script lint)
#       apache2-utils (htpasswd cross-check) skopeo (an independent registry client)
#       chromium (the HTML report checked in a headless browser)
#
# As root on Debian/Ubuntu: `apt-get install -y` whatever is missing (`apt-get update` first, only
# if something is missing); a failing install is an error.
# Otherwise: print what is missing and the command that installs it, and carry on (exit 0): the
# tests that need a missing package skip and say why. Set SPOTREG_REQUIRE_STACK=1 to make missing
# stack-tier packages an error instead (exit 1).
set -euo pipefail

stack_packages=(docker.io docker-registry busybox-static mmdebstrap iproute2 caddy pebble nginx)
optional_packages=(cloud-init shellcheck apache2-utils skopeo chromium)

say() { printf 'deps: %s\n' "$*" >&2; }

POLICY_RC=/usr/sbin/policy-rc.d

# Debian's nginx starts a web server on :80 as it installs and enables it for every boot; the images
# only copy its binary. No start during the install (a policy-rc.d refusing nginx, unless the host has
# a policy of its own), then stopped and disabled all the same.
own_policy=0

refuse_nginx_starts() {
    [[ -e $POLICY_RC ]] && return 0
    cat >"$POLICY_RC" <<'POLICY'
#!/bin/sh
# written by spotreg's ensure-debian-packages.sh for one apt-get install: nginx does not start
for a; do case $a in nginx | nginx.service) exit 101 ;; esac; done
exit 0
POLICY
    chmod 755 "$POLICY_RC"
    own_policy=1
    trap 'rm -f "$POLICY_RC"' EXIT
}

quiet_nginx() {
    if ((own_policy)); then
        rm -f "$POLICY_RC"
        trap - EXIT
    fi
    invoke-rc.d nginx stop >/dev/null 2>&1 || true
    deb-systemd-helper disable nginx.service >/dev/null 2>&1 || true
    update-rc.d nginx disable >/dev/null 2>&1 || true
}

is_installed() {
    local status
    status=$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) || return 1
    [[ $status == installed ]]
}

if ! command -v dpkg-query >/dev/null 2>&1; then
    say "not a Debian/Ubuntu host (no dpkg-query); cannot check or install packages."
    say "the stack tier needs a Docker engine plus the registry binary and a static busybox"
    say "(Debian: ${stack_packages[*]}); tests that need missing tools skip with the reason."
    if [[ ${SPOTREG_REQUIRE_STACK:-0} == 1 ]]; then
        say "SPOTREG_REQUIRE_STACK=1: cannot make sure the stack tier runs here"
        exit 1
    fi
    exit 0
fi

missing_stack=()
missing_optional=()
for package in "${stack_packages[@]}"; do
    is_installed "$package" || missing_stack+=("$package")
done
for package in "${optional_packages[@]}"; do
    is_installed "$package" || missing_optional+=("$package")
done
missing=("${missing_stack[@]}" "${missing_optional[@]}")

if ((${#missing[@]} == 0)); then
    say "all present: ${stack_packages[*]} ${optional_packages[*]}"
    exit 0
fi

needs_nginx=no
if [[ " ${missing[*]} " == *" nginx "* ]]; then needs_nginx=yes; fi

if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    say "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    if [[ $needs_nginx == yes ]]; then refuse_nginx_starts; fi
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
    if [[ $needs_nginx == yes ]]; then quiet_nginx; fi
    still_missing=()
    for package in "${missing[@]}"; do
        is_installed "$package" || still_missing+=("$package")
    done
    if ((${#still_missing[@]} > 0)); then
        say "apt-get finished but these are still not installed: ${still_missing[*]}"
        exit 1
    fi
    say "installed: ${missing[*]}"
    exit 0
fi

say "cannot install packages here (needs root and apt-get); missing: ${missing[*]}"
say "install them with:"
say "    sudo apt-get update && sudo apt-get install -y ${missing[*]}"
if [[ $needs_nginx == yes ]]; then
    say "nginx's package starts a web server on :80: stop and disable it after (sudo systemctl disable --now nginx)"
fi
if ((${#missing_optional[@]} > 0)); then
    say "warning: without ${missing_optional[*]} the tests that use them are skipped"
fi
if ((${#missing_stack[@]} > 0)); then
    say "without ${missing_stack[*]} the stack tier is skipped (each test says why)"
    if [[ ${SPOTREG_REQUIRE_STACK:-0} == 1 ]]; then
        say "SPOTREG_REQUIRE_STACK=1: the stack tier is required, failing"
        exit 1
    fi
fi
exit 0
