"""Fixtures for the compute tests: a private libvirtd and the test image.

- ``libvirtd`` (session): a private libvirtd (tests/libvirtd.py) with its
  own configuration, sockets and state in a temporary directory; skipped,
  saying what is missing, where none can run. Every domain it has is
  destroyed and undefined, and the daemon stopped, when the session ends,
  failure or not.
- ``libvirt_domains`` (per test): the same daemon, with every domain removed
  after the test, so that a failed test leaves nothing to the next.
- ``guest_image`` (session): the test image (scripts/build_test_image.py,
  docs/test-image.md) built into a temporary directory, removed at the end.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.libvirtd import Libvirtd, missing_requirements, start_libvirtd

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def libvirtd() -> Iterator[Libvirtd]:
    reason = missing_requirements()
    if reason:
        pytest.skip(reason)
    daemon = start_libvirtd()
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture
def libvirt_domains(libvirtd: Libvirtd) -> Iterator[Libvirtd]:
    try:
        yield libvirtd
    finally:
        libvirtd.cleanup_domains()


@pytest.fixture(scope="session")
def guest_image() -> Iterator[Path]:
    """The test image's directory: stratus-test.qcow2, -vmlinuz, -initrd."""
    out = Path(tempfile.mkdtemp(prefix="stratus-test-image-"))
    try:
        subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "build_test_image.py"), "--output", str(out)],
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        )
        yield out
    finally:
        shutil.rmtree(out, ignore_errors=True)
