"""Tempest's image v2 API tests against throwaway Stratus identity and image servers.

Runs scripts/tempest.sh (what ``make tempest`` runs) with
``STRATUS_TEMPEST_SUITE=image``: it installs Tempest into .venv-tempest if
needed, starts an identity server and an image server on its database,
registers the image service in the catalog, runs ``tempest.api.image.v2``
minus tests/tempest/exclude-image.txt and stops both servers. The run takes
about 30 s on two cores; the timeout leaves room for a first install of
Tempest from PyPI and a slow machine.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.lab.tempest_run import assert_only_expected_skips, run_tempest_suite

TIMEOUT = 600
# Classes that need compute (and block storage) and skip themselves here.
NEEDS_OTHER_SERVICES = (
    "tempest.api.image.v2.test_images_dependency.",
    "tempest.api.image.v2.test_images_formats.",
)


@pytest.mark.lab
@pytest.mark.timeout(TIMEOUT + 60)
def test_tempest_image_v2(tmp_path: Path) -> None:
    summary = run_tempest_suite("image", tmp_path / "tempest", TIMEOUT)
    assert_only_expected_skips(summary, lambda test, _: test.startswith(NEEDS_OTHER_SERVICES))
