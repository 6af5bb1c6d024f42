"""The load stand's only edits of the rendered configs, and the capacity ratios (no Docker needed)."""

from __future__ import annotations

import yaml

from harness.load.capacity import ratios
from harness.load.stand import front_config, load_spec, registry_config
from provisioning.render.front_config import render_front_config


def test_the_front_differs_from_the_rendered_one_by_its_addresses_only() -> None:
    spec = load_spec("t", "registry:2")
    rendered, here = render_front_config(spec).splitlines(), front_config(spec, 40001, 40002).splitlines()
    assert rendered.count("        listen [::]:5000;") == 1
    rendered.remove("        listen [::]:5000;")  # the stand listens on IPv4 loopback only
    changed = [(a.strip(), b.strip()) for a, b in zip(rendered, here, strict=True) if a != b]
    assert changed == [
        ("server 127.0.0.1:5001;", "server 127.0.0.1:40002;"),
        ("listen 5000;", "listen 127.0.0.1:40001;"),
    ]


def test_direct_configurations_get_the_htpasswd_section_back_and_the_front_one_none() -> None:
    spec = load_spec("t", "registry:2")
    direct = yaml.safe_load(registry_config(spec, 40003, auth=True))
    behind = yaml.safe_load(registry_config(spec, 40003, auth=False))
    assert direct["auth"] == {"htpasswd": {"realm": "spotreg", "path": "/auth/htpasswd"}}
    assert "auth" not in behind and behind["http"]["addr"] == direct["http"]["addr"] == "127.0.0.1:40003"


def test_ratios_pair_configurations_within_a_round_and_cpu_limit() -> None:
    runs = [
        {"round": 1, "cpus": 0.2, "configuration": name, "pulls_per_s": rate}
        for name, rate in (("direct-5", 2.0), ("direct-10", 0.5), ("front-10", 10.0))
    ] + [{"round": 1, "cpus": 2.0, "configuration": "front-10", "pulls_per_s": 30.0}]
    assert ratios(runs) == [
        {"round": 1, "cpus": 0.2, "ratio": "front-10/direct-5", "value": 5.0},
        {"round": 1, "cpus": 0.2, "ratio": "front-10/direct-10", "value": 20.0},
    ]
