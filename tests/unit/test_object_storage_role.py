"""The object storage role's Swift configuration is consistent.

Every stage of the pipelines in roles/object_storage/templates/*-server.conf.j2
has its ``[filter:...]`` or ``[app:...]`` section, and the proxy's pipeline is
Swift's documented order with identity in it (authtoken before keystoneauth,
both after the middleware that may answer anonymously, TempURL and bulk among
them), so that a stage added without its section, or moved, fails here rather
than when swift-proxy refuses to start on a host.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

TEMPLATES = Path(__file__).resolve().parents[2] / "roles" / "object_storage" / "templates"

PROXY_PIPELINE = [
    "catch_errors",
    "gatekeeper",
    "healthcheck",
    "proxy-logging",
    "cache",
    "listing_formats",
    "container_sync",
    "bulk",
    "tempurl",
    "formpost",
    "ratelimit",
    "crossdomain",
    "authtoken",
    "keystoneauth",
    "staticweb",
    "copy",
    "container-quotas",
    "account-quotas",
    "slo",
    "dlo",
    "versioned_writes",
    "symlink",
    "proxy-logging",
    "proxy-server",
]


def _sections_and_pipeline(name: str) -> tuple[set[str], list[str]]:
    text = (TEMPLATES / name).read_text(encoding="utf-8")
    sections = set(re.findall(r"^\[([^\]]+)\]$", text, flags=re.MULTILINE))
    pipelines = re.findall(r"^pipeline = (.+)$", text, flags=re.MULTILINE)
    assert len(pipelines) == 1, f"{name}: one pipeline expected"
    return sections, pipelines[0].split()


@pytest.mark.parametrize(
    "name",
    [
        "proxy-server.conf.j2",
        "account-server.conf.j2",
        "container-server.conf.j2",
        "object-server.conf.j2",
        "object-expirer.conf.j2",
    ],
)
def test_every_stage_has_its_section(name: str) -> None:
    sections, pipeline = _sections_and_pipeline(name)
    *filters, app = pipeline
    assert f"app:{app}" in sections
    missing = {f for f in filters if f"filter:{f}" not in sections}
    assert missing == set(), f"{name}: stages without a [filter:...] section"
    assert "pipeline:main" in sections


def test_the_proxy_pipeline_is_swifts_order_with_identity() -> None:
    _, pipeline = _sections_and_pipeline("proxy-server.conf.j2")
    assert pipeline == PROXY_PIPELINE


def test_storage_servers_end_in_their_app() -> None:
    for ring in ("account", "container", "object"):
        _, pipeline = _sections_and_pipeline(f"{ring}-server.conf.j2")
        assert pipeline[-1] == f"{ring}-server"
