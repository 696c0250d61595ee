"""The network role writes every option the network service and agent declare.

roles/network/templates/network.conf.j2 must name each option of
``[network]`` (services/stratus/network/settings.py) and of
``[network_authtoken]``, and network-agent.conf.j2 each of
``[network_agent]`` (services/stratus/network/agent/settings.py) and
``[network_agent_authtoken]``, so that an option added to the service
without a role variable fails here rather than in a datacenter.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stratus.common.config import OPTIONS
from stratus.network import settings
from stratus.network.agent import settings as agent_settings
from tests.unit.role_templates import written_options

TEMPLATES = Path(__file__).resolve().parents[2] / "roles" / "network" / "templates"


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
    written = written_options(TEMPLATES / template).get(section, set())
    declared = set(OPTIONS[section])
    assert declared - written == set(), f"[{section}] options the role does not write"
    assert written - declared == set(), f"[{section}] options the service does not know"
