"""Debian kernel packages for QEMU guests: fetched, extracted, and packed into initramfs.

Shared by the test image (``scripts/build_test_image.py``: the Debian cloud
kernel and a busybox initramfs) and the stock-kernel test guest
(``tests/stock_kernel.py``: Debian's generic kernel for VLAN and GRE).

- ``DebianKernel.fetch(package)`` resolves a metapackage such as
  ``linux-image-amd64`` to the versioned package it depends on, downloads it
  with ``apt-get download`` from the machine's own apt sources, extracts it
  with ``dpkg-deb -x`` and indexes its modules with ``depmod``, once: the
  result is cached under ``/var/cache/stratus-lab/kernel/<package>``.
- ``DebianKernel.dependencies(module)`` lists a module's file and the files
  of the modules it needs, in loading order, for ``insmod`` in an initramfs.
- ``newc(files)`` writes a cpio archive in the kernel's ``newc`` format
  (no cpio program needed; the entries are exactly the ones given).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

CACHE = Path(os.environ.get("STRATUS_KERNEL_CACHE", "/var/cache/stratus-lab/kernel"))
# An initramfs entry: path inside the archive, mode (with the file type bits), content.
Entry = tuple[str, int, bytes]
DIRECTORY = 0o40755
EXECUTABLE = 0o100755
REGULAR = 0o100644


def _run(argv: Sequence[str], cwd: Path | None = None) -> str:
    result = subprocess.run(list(argv), capture_output=True, text=True, check=False, cwd=cwd)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {result.stderr.strip()}")
    return result.stdout


@dataclass(frozen=True)
class DebianKernel:
    """An extracted Debian kernel package: ``vmlinuz`` and its module tree."""

    root: Path  # the package's files: boot/, lib/modules/<version>/
    version: str

    @property
    def vmlinuz(self) -> Path:
        return self.root / "boot" / f"vmlinuz-{self.version}"

    @property
    def modules(self) -> Path:
        return self.root / "lib" / "modules" / self.version

    @classmethod
    def fetch(cls, package: str = "linux-image-amd64", cache: Path = CACHE) -> DebianKernel:
        """The newest ``package`` from the machine's apt sources, extracted once and cached."""
        cache.mkdir(parents=True, exist_ok=True)
        with _locked(cache / ".lock"):
            real = resolve_metapackage(package)
            root = cache / real
            stamp = root / ".stratus-extracted"
            if not stamp.exists():
                shutil.rmtree(root, ignore_errors=True)
                download = cache / "download"
                shutil.rmtree(download, ignore_errors=True)
                download.mkdir()  # apt downloads as root here ("unsandboxed"): harmless
                _run(["apt-get", "download", "-q", real], cwd=download)
                (deb,) = download.glob("*.deb")
                root.mkdir()
                _run(["dpkg-deb", "-x", str(deb), str(root)])
                shutil.rmtree(download)
                (modules,) = (root / "lib" / "modules").iterdir()
                _run(["depmod", "-b", str(root), modules.name])
                stamp.write_text(modules.name)
            return cls(root=root, version=stamp.read_text().strip())

    def builtin(self, module: str) -> bool:
        """Whether ``module`` is compiled into the kernel (nothing to load)."""
        names = (self.modules / "modules.builtin").read_text().split()
        return any(module_name(path) == module_name(module) for path in names)

    def dependencies(self, module: str) -> list[Path]:
        """``module``'s file and those it needs, in loading order (needs first)."""
        deps: dict[str, list[str]] = {}
        for line in (self.modules / "modules.dep").read_text().splitlines():
            path, _, needs = line.partition(":")
            deps[module_name(path)] = [path, *needs.split()]
        order: list[Path] = []

        def visit(name: str) -> None:
            if name not in deps:
                raise KeyError(f"{self.version} has no module {name}")
            path, *needs = deps[name]
            for need in reversed(needs):
                visit(module_name(need))
            full = self.modules / path
            if full not in order:
                order.append(full)

        visit(module_name(module))
        return order

    def load_order(self, modules: Sequence[str]) -> list[Path]:
        """The files to insmod, in order, for ``modules`` (the built-in ones need none)."""
        order: list[Path] = []
        for name in modules:
            if self.builtin(name):
                continue
            order += [m for m in self.dependencies(name) if m not in order]
        return order


def module_name(path: str) -> str:
    """``kernel/net/8021q/8021q.ko`` -> ``8021q``; dashes are underscores to the kernel."""
    return Path(path).name.removesuffix(".ko").replace("-", "_")


def resolve_metapackage(package: str) -> str:
    """``linux-image-amd64`` -> ``linux-image-6.1.0-NN-amd64`` (what it depends on)."""
    out = _run(["apt-cache", "depends", "--important", package])
    for line in out.splitlines():
        name = line.strip().removeprefix("Depends:").strip()
        if line.strip().startswith("Depends:") and name.startswith("linux-image-"):
            return name
    return package


def newc(files: Sequence[Entry]) -> bytes:
    """A cpio archive in the kernel's ``newc`` format, owned by root."""
    out = bytearray()

    def entry(ino: int, name: str, mode: int, data: bytes) -> None:
        encoded = name.encode() + b"\0"
        fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(encoded), 0)
        out.extend(b"070701" + b"".join(b"%08X" % f for f in fields) + encoded)
        out.extend(b"\0" * (-len(out) % 4))
        out.extend(data)
        out.extend(b"\0" * (-len(out) % 4))

    for ino, (name, mode, data) in enumerate(files, start=1):
        entry(ino, name, mode, data)
    entry(0, "TRAILER!!!", 0, b"")
    return bytes(out)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
