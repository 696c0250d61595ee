"""Tempest's identity v3 API tests against a throwaway Stratus identity server.

Runs scripts/tempest.sh (what ``make tempest`` runs) with
``STRATUS_TEMPEST_SUITE=identity``: it installs Tempest into .venv-tempest if
needed, starts and bootstraps its own server, runs ``tempest.api.identity``
minus tests/tempest/exclude-identity.txt and stops the server. The run takes
about 65-90 s on two cores; the timeout leaves room for a first install of
Tempest from PyPI and a slow machine.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.lab.tempest_run import run_tempest_suite

TIMEOUT = 840


@pytest.mark.lab
@pytest.mark.timeout(TIMEOUT + 60)
def test_tempest_identity_v3(tmp_path: Path) -> None:
    run_tempest_suite("identity", tmp_path / "tempest", TIMEOUT)
