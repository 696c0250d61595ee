"""The image role writes every option the image service declares.

roles/image/templates/image.conf.j2 must name each option of ``[image]``
(services/stratus/image/settings.py) and of ``[image_authtoken]``
(``register_authtoken``), so that an option added to the service without a
role variable fails here rather than in a datacenter.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stratus.common.config import OPTIONS
from stratus.image import settings

TEMPLATE = Path(__file__).resolve().parents[2] / "roles" / "image" / "templates" / "image.conf.j2"


def _written_options() -> dict[str, set[str]]:
    sections: dict[str, set[str]] = {}
    current = None
    for line in TEMPLATE.read_text(encoding="utf-8").splitlines():
        header = re.fullmatch(r"\[(\w+)\]", line.strip())
        if header:
            current = sections.setdefault(header.group(1), set())
            continue
        option = re.match(r"(\w+) = ", line)
        if option and current is not None:
            current.add(option.group(1))
    return sections


@pytest.mark.parametrize("section", [settings.SECTION, settings.AUTHTOKEN_SECTION])
def test_every_option_has_a_line_in_the_template(section: str) -> None:
    written = _written_options().get(section, set())
    declared = set(OPTIONS[section])
    assert declared - written == set(), f"[{section}] options the role does not write"
    assert written - declared == set(), f"[{section}] options the service does not know"
