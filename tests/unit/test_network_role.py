"""The network role writes every option the network service and agent declare.

roles/network/templates/network.conf.j2 must name each option of
``[network]`` (services/stratus/network/settings.py) and of
``[network_authtoken]``, and network-agent.conf.j2 each of
``[network_agent]`` (services/stratus/network/agent/settings.py) and
``[network_agent_authtoken]``, so that an option added to the service
without a role variable fails here rather than in a datacenter.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stratus.common.config import OPTIONS
from stratus.network import settings
from stratus.network.agent import settings as agent_settings

TEMPLATES = Path(__file__).resolve().parents[2] / "roles" / "network" / "templates"


def _written_options(template: str) -> dict[str, set[str]]:
    sections: dict[str, set[str]] = {}
    current = None
    for line in (TEMPLATES / template).read_text(encoding="utf-8").splitlines():
        header = re.fullmatch(r"\[(\w+)\]", line.strip())
        if header:
            current = sections.setdefault(header.group(1), set())
            continue
        option = re.match(r"(\w+) = ", line)
        if option and current is not None:
            current.add(option.group(1))
    return sections


@pytest.mark.parametrize(
    ("template", "section"),
    [
        ("network.conf.j2", settings.SECTION),
        ("network.conf.j2", settings.AUTHTOKEN_SECTION),
        ("network-agent.conf.j2", agent_settings.SECTION),
        ("network-agent.conf.j2", agent_settings.AUTHTOKEN_SECTION),
    ],
)
def test_every_option_has_a_line_in_the_template(template: str, section: str) -> None:
    written = _written_options(template).get(section, set())
    declared = set(OPTIONS[section])
    assert declared - written == set(), f"[{section}] options the role does not write"
    assert written - declared == set(), f"[{section}] options the service does not know"
