"""Tempest's object storage API tests against a rolled-out Stratus cloud with Swift.

Unlike the identity and image suites this one starts no server: it runs
scripts/tempest.sh with ``STRATUS_TEMPEST_SUITE=object_storage`` against an
existing cloud, the cloud ``CLOUD`` of a clouds.yaml whose credentials are a
cloud admin's (``stratus-admin`` in the clouds.yaml of playbooks/demo.yml).
Tempest creates a project and user per test class there and deletes them
again; it touches no other project's data. ``tempest.api.object_storage``
minus tests/tempest/exclude-object-storage.txt takes 40-90 s on the
all-in-one host.

Two ways to call it:

- from a test or a Molecule verify that has a rolled-out cloud, in Python::

      from tests.lab.tempest_object_storage import check_tempest_object_storage
      check_tempest_object_storage(Path("clouds.yaml"), "stratus-admin", out_dir)

- from a playbook or shell, from the checkout (exit 0 when it passes)::

      .venv/bin/python -m tests.lab.tempest_object_storage \\
          --clouds-yaml /etc/openstack/clouds.yaml --cloud stratus-admin \\
          [--out .lab/tempest-object-storage]

The Molecule scenario molecule/object-storage runs it (the second way) at
the end of its verify, against its proxy and three storage hosts, so
``make test`` runs it on a multi-host cluster.

It fails on any Tempest failure, on a test that did not run, and on any skip
other than the ones in ``EXPECTED_SKIPS`` (a skip for a middleware missing from
the proxy's pipeline is a failure).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.lab.tempest_run import ROOT, run_tempest_suite

TIMEOUT = 900
# Skips that say nothing is missing, test id -> why.
EXPECTED_SKIPS = {
    "tempest.api.object_storage.test_account_quotas.AccountQuotasTest."
    "test_storage_policy_quota_limit": (
        "needs a storage policy named 'silver'; the role configures one policy (Policy-0)"
    ),
    "tempest.api.object_storage.test_account_quotas.AccountQuotasTest."
    "test_upload_too_many_objects": (
        "object count quotas (X-Account-Quota-Count) came with Swift 2.34; Debian 12 has 2.30"
    ),
    "tempest.api.object_storage.test_container_sync.ContainerSyncTest."
    "test_container_synchronization": (
        "old-style container sync: skipped by Tempest itself (bug 1317133) and "
        "container_sync = false (no container-sync daemon)"
    ),
}


def check_tempest_object_storage(
    clouds_yaml: Path, cloud: str, out: Path, timeout: int = TIMEOUT
) -> dict[str, Any]:
    """Run Tempest's object storage tests against CLOUD of CLOUDS_YAML.

    Output goes to OUT (replaced). Fails (AssertionError, or pytest's Failed on
    a timeout) on a Tempest failure, a test that did not run or an unexpected
    skip; returns summary.json otherwise.
    """
    if not clouds_yaml.is_file():
        raise AssertionError(f"no clouds.yaml at {clouds_yaml}")
    summary = run_tempest_suite(
        "object_storage",
        out,
        timeout,
        env={"STRATUS_TEMPEST_CLOUD": cloud, "OS_CLIENT_CONFIG_FILE": str(clouds_yaml.resolve())},
    )
    unexpected = {
        test: reason for test, reason in summary["skips"].items() if test not in EXPECTED_SKIPS
    }
    assert not unexpected, f"object storage tests skipped: {unexpected}"
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clouds-yaml", type=Path, required=True)
    parser.add_argument("--cloud", required=True, help="a cloud admin's cloud in clouds.yaml")
    parser.add_argument("--out", type=Path, default=ROOT / ".lab" / "tempest-object-storage")
    parser.add_argument("--timeout", type=int, default=TIMEOUT)
    args = parser.parse_args(argv)
    try:
        summary = check_tempest_object_storage(args.clouds_yaml, args.cloud, args.out, args.timeout)
    except (AssertionError, pytest.fail.Exception) as error:
        print(f"tempest object storage: FAILED\n{error}", file=sys.stderr)
        return 1
    print(
        f"tempest object storage: {summary['passed']} passed, {summary['failed']} failed, "
        f"{summary['skipped']} skipped (expected), {summary['excluded']} excluded, "
        f"{summary['seconds']} s; output in {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
