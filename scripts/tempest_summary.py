"""Summarise a Tempest (stestr) run: counts, failures with their cause, exclusions.

Run by scripts/tempest.sh with .venv-tempest's Python (it needs python-subunit
and testtools, which come with Tempest). Prints a short report and writes the
same as JSON::

    python scripts/tempest_summary.py --subunit results.subunit \
        --selected selected.txt --exclude-list tests/tempest/exclude-identity.txt \
        --json summary.json

The closing line reads ``tempest: N passed, N failed, N skipped``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import sys
from pathlib import Path


def read_results(path: Path) -> dict[str, dict]:
    """Test id -> {status, seconds, reason} from a subunit v2 stream."""
    import subunit
    import testtools

    results: dict[str, dict] = {}

    def on_test(test: dict) -> None:
        test_id = re.sub(r"\[.*\]$", "", test["id"])
        details = test.get("details") or {}
        text = ""
        for name in ("traceback", "reason"):
            if name in details:
                text = details[name].as_text()
                break
        seconds = None
        start, stop = test.get("timestamps", (None, None))
        if start and stop:
            seconds = round((stop - start).total_seconds(), 2)
        results[test_id] = {
            "status": test["status"],
            "seconds": seconds,
            "reason": _last_line(text),
            "traceback": text if test["status"] in ("fail", "uxsuccess") else "",
        }

    if not path.exists() or path.stat().st_size == 0:
        return results
    with path.open("rb") as stream:
        case = subunit.ByteStreamToStreamResult(stream, non_subunit_name="stdout")
        result = testtools.StreamToDict(on_test)
        result.startTestRun()
        try:
            case.run(result)
        finally:
            result.stopTestRun()
    return results


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    # testtools appends the captured log and stdout after the traceback; the
    # exception is the last line before them.
    for i in range(len(lines) - 1, -1, -1):
        line = lines[i]
        if re.match(
            r"^[\w.]+(Error|Exception|Failure|Unauthorized|Forbidden|NotFound|"
            r"BadRequest|Conflict|Mismatch|ServerFault|UnexpectedResponseCode)\b",
            line,
        ) or line.startswith(("testtools.", "tempest.lib.exceptions.", "AssertionError")):
            # Tempest's REST errors carry the response body on a "Details:" line.
            if i + 1 < len(lines) and lines[i + 1].startswith("Details:"):
                line = f"{line} {lines[i + 1]}"
            return line[:400]
    return lines[-1][:400] if lines else ""


def read_exclusions(path: Path) -> list[tuple[str, str]]:
    rules = []
    for raw in path.read_text().splitlines():
        regex, _, reason = raw.partition("#")
        if regex.strip():
            rules.append((regex.strip(), reason.strip()))
    return rules


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subunit", type=Path, required=True)
    parser.add_argument("--selected", type=Path, help="tests the regex selects (--list-tests)")
    parser.add_argument("--exclude-list", type=Path)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--tempest-version", default="")
    parser.add_argument("--seconds", type=int, default=0)
    parser.add_argument("--exit-code", type=int, default=0)
    args = parser.parse_args(argv)

    results = read_results(args.subunit)
    # A class that skips itself (setUpClass: "Nova is not available") is one
    # result; its tests are counted below, each as skipped with its reason.
    skipped_classes = {
        match.group(1): results.pop(tid)["reason"]
        for tid in list(results)
        if (match := re.fullmatch(r"setUpClass \(([\w.]+)\)", tid))
        and results[tid]["status"] == "skip"
    }
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    for result in results.values():
        status = result["status"]
        if status in ("success", "xfail"):
            counts["passed"] += 1
        elif status == "skip":
            counts["skipped"] += 1
        else:
            counts["failed"] += 1

    excluded: dict[str, list[str]] = {}
    expected: list[str] = []
    rules = read_exclusions(args.exclude_list) if args.exclude_list else []
    if args.selected and args.selected.exists():
        for test_id in args.selected.read_text().split():
            test_id = re.sub(r"\[.*\]$", "", test_id)
            for regex, reason in rules:
                if re.search(regex, test_id):
                    excluded.setdefault(f"{regex}  # {reason}", []).append(test_id)
                    break
            else:
                expected.append(test_id)
    for tid in expected:
        test_class = tid.rpartition(".")[0]
        if tid not in results and test_class in skipped_classes:
            results[tid] = {
                "status": "skip",
                "seconds": None,
                "reason": skipped_classes[test_class],
                "traceback": "",
            }
            counts["skipped"] += 1
    # Tests of a class whose setUpClass failed never run: stestr counts one
    # failure for the class. List them, so that the numbers add up.
    not_run = [tid for tid in expected if tid not in results]
    failures = {
        tid: r
        for tid, r in sorted(results.items())
        if r["status"] not in ("success", "xfail", "skip")
    }
    skipped = {tid: r["reason"] for tid, r in sorted(results.items()) if r["status"] == "skip"}

    summary = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "tempest_version": args.tempest_version,
        "seconds": args.seconds,
        "exit_code": args.exit_code,
        **counts,
        "not_run": len(not_run),
        "selected": len(expected),
        "excluded": sum(len(v) for v in excluded.values()),
        "exclusions": excluded,
        "skips": skipped,
        "not_run_tests": not_run,
        "failures": {
            tid: {"reason": r["reason"], "traceback": r["traceback"]} for tid, r in failures.items()
        },
    }
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")

    print(
        f"\nTempest {args.tempest_version}, {args.seconds} s, "
        f"{summary['excluded']} tests excluded by the list"
    )
    for tid, reason in skipped.items():
        print(f"  skipped  {tid}: {reason}")
    for tid, result in failures.items():
        print(f"  FAILED   {tid}: {result['reason']}")
    if not_run:
        print(f"  {len(not_run)} tests did not run (their class's setUpClass failed)")
    print(
        f"tempest: {counts['passed']} passed, {counts['failed']} failed, "
        f"{counts['skipped']} skipped"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
