"""What a role's configuration template writes: section -> option names."""

from __future__ import annotations

import re
from pathlib import Path


def written_options(template: Path) -> dict[str, set[str]]:
    """The ``option = ...`` lines of each ``[section]`` of ``template``."""
    sections: dict[str, set[str]] = {}
    current = None
    for line in template.read_text(encoding="utf-8").splitlines():
        header = re.fullmatch(r"\[(\w+)\]", line.strip())
        if header:
            current = sections.setdefault(header.group(1), set())
            continue
        option = re.match(r"(\w+) = ", line)
        if option and current is not None:
            current.add(option.group(1))
    return sections
