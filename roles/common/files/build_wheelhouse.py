#!/usr/bin/env python3
"""Build or inspect the wheelhouse the common role installs on Stratus hosts.

Runs on the deploying machine (the role delegates it to localhost) with the
Python that runs Ansible, and prints one JSON object on stdout:

    {"changed": bool, "wheelhouse": DIR, "fingerprint": SHA256,
     "stratus_wheel": FILE, "stratus_version": VERSION, "python_tags": [...],
     "wheels": [FILE, ...]}

``build``   builds the services package from a source checkout (pyproject.toml
            and services/) into a wheel and puts it in DIR together with
            wheels of all its dependencies. Nothing is rebuilt while the
            source, the extras and the Python version are unchanged, so a
            second run reports "changed": false. A rebuild goes to a fresh
            directory that replaces DIR only when it is complete, reusing the
            wheels already in DIR instead of downloading them again.
``inspect`` checks an operator-provided offline wheelhouse and reports it.

``fingerprint`` hashes the names and contents of the wheels, so the hosts
reinstall exactly when the wheelhouse changed. ``python_tags`` lists the
CPython ABI tags (``cp311``) of version-specific wheels: the hosts' Python
must match them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

STAMP = ".stratus-source-fingerprint"
# What the package is built from, relative to the source root.
SOURCE_FILES = ("pyproject.toml", "README.md", "setup.cfg", "setup.py", "MANIFEST.in")
LICENSE_GLOBS = ("LICEN[CS]E*", "COPYING*", "NOTICE*", "AUTHORS*")
SOURCE_DIRS = ("services",)
IGNORED_PARTS = {"__pycache__", "build", "dist"}
IGNORED_SUFFIXES = (".pyc", ".pyo")
WHEEL_NAME = re.compile(
    r"^(?P<name>[^-]+)-(?P<version>[^-]+)(-\d[^-]*)?-(?P<py>[^-]+)-(?P<abi>[^-]+)-(?P<plat>[^-]+)\.whl$"
)


class Failure(Exception):
    pass


def _source_paths(source: Path) -> list[Path]:
    paths = [source / name for name in SOURCE_FILES if (source / name).is_file()]
    paths += sorted(p for pattern in LICENSE_GLOBS for p in source.glob(pattern) if p.is_file())
    if not (source / "pyproject.toml").is_file():
        raise Failure(f"{source}: no pyproject.toml; is this a Stratus checkout?")
    for directory in SOURCE_DIRS:
        for path in sorted((source / directory).rglob("*")):
            rel = path.relative_to(source)
            if not path.is_file() or set(rel.parts) & IGNORED_PARTS:
                continue
            if path.name.endswith(IGNORED_SUFFIXES) or any(
                part.endswith(".egg-info") for part in rel.parts
            ):
                continue
            paths.append(path)
    return paths


def source_fingerprint(source: Path, extras: list[str]) -> str:
    digest = hashlib.sha256()
    digest.update(f"python {sys.version_info[0]}.{sys.version_info[1]}\n".encode())
    digest.update(f"extras {','.join(sorted(extras))}\n".encode())
    for path in _source_paths(source):
        digest.update(str(path.relative_to(source)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def describe(wheelhouse: Path) -> dict[str, object]:
    wheels = sorted(p for p in wheelhouse.glob("*.whl") if p.is_file())
    if not wheels:
        raise Failure(f"{wheelhouse}: holds no wheels")
    digest = hashlib.sha256()
    python_tags: set[str] = set()
    stratus: list[tuple[str, str]] = []
    names: dict[str, list[str]] = {}
    for wheel in wheels:
        digest.update(wheel.name.encode() + b"\0")
        digest.update(hashlib.sha256(wheel.read_bytes()).digest())
        match = WHEEL_NAME.match(wheel.name)
        if not match:
            raise Failure(f"{wheel}: not a wheel file name")
        name = match["name"].lower().replace("_", "-")
        names.setdefault(name, []).append(wheel.name)
        for abi in match["abi"].split("."):
            if re.fullmatch(r"cp\d+", abi):
                python_tags.add(abi)
        if name == "stratus":
            stratus.append((wheel.name, match["version"]))
    doubles = {n: w for n, w in names.items() if len(w) > 1}
    if doubles:
        raise Failure(
            f"{wheelhouse}: more than one wheel of "
            + "; ".join(f"{n} ({', '.join(w)})" for n, w in sorted(doubles.items()))
        )
    if len(stratus) != 1:
        raise Failure(f"{wheelhouse}: expected exactly one stratus wheel, found {len(stratus)}")
    return {
        "wheelhouse": str(wheelhouse),
        "fingerprint": digest.hexdigest(),
        "stratus_wheel": stratus[0][0],
        "stratus_version": stratus[0][1],
        "python_tags": sorted(python_tags),
        "wheels": [wheel.name for wheel in wheels],
    }


def build(source: Path, wheelhouse: Path, extras: list[str]) -> dict[str, object]:
    fingerprint = source_fingerprint(source, extras)
    stamp = wheelhouse / STAMP
    if stamp.is_file() and stamp.read_text().strip() == fingerprint:
        try:
            return {"changed": False, **describe(wheelhouse)}
        except Failure:
            pass  # an incomplete wheelhouse: build it again
    wheelhouse.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".wheelhouse-", dir=wheelhouse.parent))
    try:
        # Build from a copy: an in-tree build would write build/ and
        # *.egg-info into the checkout (or a read-only installed collection).
        tree = work / "src"
        for path in _source_paths(source):
            target = tree / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        out = work / "wheels"
        requirement = f"{tree}[{','.join(extras)}]" if extras else str(tree)
        command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(out)]
        if wheelhouse.is_dir():
            command += ["--find-links", str(wheelhouse)]
        command.append(requirement)
        run = subprocess.run(command, capture_output=True, text=True, check=False)
        if run.returncode != 0:
            raise Failure(
                f"pip wheel failed ({run.returncode}): {run.stderr.strip() or run.stdout.strip()}"
            )
        (out / STAMP).write_text(fingerprint + "\n")
        old = work / "old"
        if wheelhouse.exists():
            os.replace(wheelhouse, old)
        os.replace(out, wheelhouse)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"changed": True, **describe(wheelhouse)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_build = sub.add_parser("build", help="build the wheelhouse from a source checkout")
    p_build.add_argument("--source", required=True, type=Path)
    p_build.add_argument("--wheelhouse", required=True, type=Path)
    p_build.add_argument("--extras", default="", help="comma-separated extras")
    p_inspect = sub.add_parser("inspect", help="describe an existing wheelhouse")
    p_inspect.add_argument("--wheelhouse", required=True, type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            extras = [e.strip() for e in args.extras.split(",") if e.strip()]
            result = build(args.source.resolve(), args.wheelhouse.absolute(), extras)
        else:
            if not args.wheelhouse.is_dir():
                raise Failure(f"{args.wheelhouse}: no such directory")
            result = {"changed": False, **describe(args.wheelhouse.absolute())}
    except Failure as exc:
        print(json.dumps({"changed": False, "failed": True, "msg": str(exc)}))
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
