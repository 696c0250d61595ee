"""Fixtures for the compute tests: a private libvirtd and the test image.

- ``libvirtd`` (session): a private libvirtd (tests/libvirtd.py) with its
  own configuration, sockets and state in a temporary directory; skipped,
  saying what is missing, where none can run. Every domain it has is
  destroyed and undefined, and the daemon stopped, when the session ends,
  failure or not.
- ``libvirt_domains`` (per test): the same daemon, with every domain removed
  after the test, so that a failed test leaves nothing to the next.
- ``lab`` (per test): a namespace with a bridge, dnsmasq and a metadata
  server for test images booted straight under QEMU.
- ``guest_image`` (session): the test image (scripts/build_test_image.py,
  docs/test-image.md) built into a temporary directory, removed at the end.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.compute.guest_lab import Lab, build_image
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
        yield build_image(out)
    finally:
        shutil.rmtree(out, ignore_errors=True)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    """A namespace of the test's own with a bridge, dnsmasq and a metadata
    server, for test images booted straight under QEMU (tests/compute/guest_lab.py)."""
    lab = Lab(tmp_path)
    try:
        yield lab
    finally:
        lab.close()
