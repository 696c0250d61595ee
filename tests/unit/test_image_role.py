"""The image role writes every option the image service declares.

roles/image/templates/image.conf.j2 must name each option of ``[image]``
(services/stratus/image/settings.py) and of ``[image_authtoken]``
(``register_authtoken``), so that an option added to the service without a
role variable fails here rather than in a datacenter.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stratus.common.config import OPTIONS
from stratus.image import settings
from tests.unit.role_templates import written_options

TEMPLATE = Path(__file__).resolve().parents[2] / "roles" / "image" / "templates" / "image.conf.j2"


@pytest.mark.parametrize("section", [settings.SECTION, settings.AUTHTOKEN_SECTION])
def test_every_option_has_a_line_in_the_template(section: str) -> None:
    written = written_options(TEMPLATE).get(section, set())
    declared = set(OPTIONS[section])
    assert declared - written == set(), f"[{section}] options the role does not write"
    assert written - declared == set(), f"[{section}] options the service does not know"
