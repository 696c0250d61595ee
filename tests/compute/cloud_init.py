"""Debian's cloud-init, unpacked (not installed), to run its own readers in tests.

cloud-init is pure Python. ``dist_packages()`` fetches Debian's package
once with ``apt-get download`` into ``/var/cache/stratus-lab/cloud-init``
(from the machine's own apt sources), unpacks it there with ``dpkg -x``
and returns its ``usr/lib/python3/dist-packages``; ``run()`` runs a Python
script with that directory on ``sys.path``, under this virtualenv's
Python (which has what cloud-init imports: requests, jinja2, pyyaml,
jsonschema, jsonpatch and configobj, from requirements/dev.txt), and
returns the JSON document the script prints last.

Nothing is installed on the machine: no cloud-init service, no files
outside the cache directory.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

CACHE = Path("/var/cache/stratus-lab/cloud-init")
PACKAGE = "cloud-init"


def dist_packages(cache: Path = CACHE) -> Path:
    """cloud-init's Python packages, fetched and unpacked once."""
    root = cache / "root"
    packages = root / "usr/lib/python3/dist-packages"
    if (packages / "cloudinit").is_dir():
        return packages
    cache.mkdir(parents=True, exist_ok=True)
    debs = sorted(cache.glob(f"{PACKAGE}_*.deb"))
    if not debs:
        fetched = subprocess.run(
            ["apt-get", "download", PACKAGE],
            cwd=cache,
            capture_output=True,
            text=True,
            timeout=300,
        )
        debs = sorted(cache.glob(f"{PACKAGE}_*.deb"))
        if not debs:
            raise RuntimeError(
                f"apt-get download {PACKAGE} failed (run apt-get update first?): {fetched.stderr}"
            )
    # Unpacked beside the target and renamed into place: a concurrent test
    # run never sees half a tree.
    unpacked = Path(tempfile.mkdtemp(prefix=".root-", dir=cache))
    try:
        subprocess.run(["dpkg", "-x", str(debs[-1]), str(unpacked)], check=True, timeout=120)
        try:
            unpacked.rename(root)
        except OSError:
            if not (packages / "cloudinit").is_dir():
                raise
    finally:
        shutil.rmtree(unpacked, ignore_errors=True)
    return packages


def environment(packages: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(packages), "PYTHONDONTWRITEBYTECODE": "1"}


def run(
    script: str,
    args: Sequence[str] = (),
    *,
    prefix: Sequence[str] = (),
    timeout: float = 60,
) -> Any:
    """Run ``script`` with cloud-init importable; the JSON it printed last.

    ``prefix`` goes before the interpreter (``ip netns exec <name>``).
    """
    packages = dist_packages()
    done = subprocess.run(
        [*prefix, sys.executable, "-c", script, *args],
        env=environment(packages),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise AssertionError(
            f"cloud-init script failed ({done.returncode}):\n{done.stderr[-4000:]}"
        )
    return json.loads(done.stdout.strip().splitlines()[-1])
