#!/usr/bin/env python3
# Copyright: Stratus engineers
# Apache License 2.0
"""The machine-side work of the Stratus lab hosts, for stratus.cloud.lab_host.

Run by `ansible.builtin.script` on the machine (as root) with one subcommand and
its parameters as a JSON object in the environment variable STRATUS_LAB_PARAMS.
Prints one JSON object on stdout with "changed" (true only when something was
done), so that the role reports changes truthfully; on failure prints the
reason on stderr (and a JSON object with "msg") and exits 1.

  sources  the Debian mirror and the hosts' apt sources, read from this
           machine's apt configuration (never changes anything)
  rootfs   the cached debootstrapped root: built when missing or when its stamp
           (suite, variant, packages) differs; state=absent removes it
  host     one lab host: present (copy of the cached root), running (booted
           with systemd-nspawn, detached), stopped, absent

With "check": true in the parameters nothing is done, only reported
(Ansible's check mode).

Only the Python standard library is used, so any python3 on the machine runs it.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid

PARAMS_ENV = "STRATUS_LAB_PARAMS"
HOST_MARKER = "etc/stratus-lab-host"
STAMP_FORMAT = 1
MASKED_UNITS = ("apt-daily.timer", "apt-daily-upgrade.timer")
ENABLED_UNITS = ("systemd-networkd.service",)
DEBIAN_KEYRINGS = (
    "/usr/share/keyrings/debian-archive-keyring.gpg",
    "/usr/share/keyrings/debian-archive-keyring.pgp",
)


class Failure(Exception):
    def __init__(self, msg, **extra):
        super().__init__(msg)
        self.msg = msg
        self.extra = extra


def run(cmd, **kwargs):
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)
    if proc.returncode != 0:
        raise Failure(
            f"{' '.join(cmd)} failed with rc {proc.returncode}",
            stdout=proc.stdout[-4000:],
            stderr=proc.stderr[-4000:],
        )
    return proc


def tail(path, lines=40):
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return "".join(handle.readlines()[-lines:])
    except OSError:
        return ""


# --- sources -----------------------------------------------------------------


def parse_one_line(path):
    """Entries of a one-line style sources file."""
    entries = []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for raw in handle:
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            words = line.split()
            kind = words.pop(0)
            options = {}
            if words and words[0].startswith("["):
                opt_words = []
                while words:
                    word = words.pop(0)
                    opt_words.append(word)
                    if word.endswith("]"):
                        break
                for opt in " ".join(opt_words).strip("[] ").split():
                    if "=" in opt:
                        key, value = opt.split("=", 1)
                        options[key.lower()] = value
            if len(words) < 2:
                continue
            entries.append(
                {
                    "file": path,
                    "types": [kind],
                    "uris": [words[0]],
                    "suites": [words[1]],
                    "components": words[2:],
                    "signed_by": options.get("signed-by", ""),
                    "trusted": options.get("trusted", "") == "yes",
                }
            )
    return entries


def parse_deb822(path):
    """Entries of a deb822 style .sources file."""
    paragraphs, fields, last = [], {}, None
    with open(path, encoding="utf-8", errors="replace") as handle:
        for raw in handle:
            line = raw.rstrip("\n")
            if line.startswith("#"):
                continue
            if not line.strip():
                if fields:
                    paragraphs.append(fields)
                fields, last = {}, None
                continue
            if line[0] in " \t" and last:
                fields[last] += "\n" + line.strip()
                continue
            if ":" in line:
                key, value = line.split(":", 1)
                last = key.strip().lower()
                fields[last] = value.strip()
    if fields:
        paragraphs.append(fields)
    entries = []
    for para in paragraphs:
        if para.get("enabled", "yes").lower() in ("no", "false", "0"):
            continue
        signed_by = para.get("signed-by", "")
        if "\n" in signed_by or "BEGIN PGP" in signed_by:
            signed_by = "(inline key)"
        entries.append(
            {
                "file": path,
                "types": para.get("types", "").split(),
                "uris": para.get("uris", "").split(),
                "suites": para.get("suites", "").split(),
                "components": para.get("components", "").split(),
                "signed_by": signed_by,
                "trusted": para.get("trusted", "").lower() == "yes",
            }
        )
    return entries


def read_sources(apt_dir):
    entries = []
    main = os.path.join(apt_dir, "sources.list")
    if os.path.isfile(main):
        entries.extend(parse_one_line(main))
    for path in sorted(glob.glob(os.path.join(apt_dir, "sources.list.d", "*"))):
        if path.endswith(".list"):
            entries.extend(parse_one_line(path))
        elif path.endswith(".sources"):
            entries.extend(parse_deb822(path))
    return [e for e in entries if "deb" in e["types"] and e["uris"] and e["suites"]]


def host_sources_text(entries, suite):
    """deb822 text with the machine's entries for suite and its companions."""
    wanted = {suite, suite + "-updates", suite + "-security", suite + "-backports"}
    paragraphs, seen = [], set()
    for entry in entries:
        suites = [s for s in entry["suites"] if s in wanted]
        if not suites:
            continue
        key = (tuple(entry["uris"]), tuple(suites), tuple(entry["components"]))
        if key in seen:
            continue
        seen.add(key)
        lines = [
            "Types: deb",
            "URIs: " + " ".join(entry["uris"]),
            "Suites: " + " ".join(suites),
            "Components: " + " ".join(entry["components"] or ["main"]),
        ]
        # A host has debian-archive-keyring; another keyring path of the
        # machine would not exist there, so apt uses trusted.gpg.d instead.
        if entry["signed_by"] in DEBIAN_KEYRINGS:
            lines.append("Signed-By: " + entry["signed_by"])
        if entry["trusted"]:
            lines.append("Trusted: yes")
        paragraphs.append("\n".join(lines) + "\n")
    return "\n".join(paragraphs)


def cmd_sources(params):
    suite = params.get("suite", "bookworm")
    try:
        entries = read_sources(params.get("apt_dir", "/etc/apt"))
    except OSError as exc:
        raise Failure(f"cannot read the apt sources: {exc}") from exc
    mirror = next((e["uris"][0] for e in entries if suite in e["suites"]), "")
    return {
        "changed": False,
        "mirror": mirror,
        "entries": entries,
        "host_sources": host_sources_text(entries, suite),
    }


# --- rootfs ------------------------------------------------------------------


def wanted_stamp(params):
    return {
        "format": STAMP_FORMAT,
        "slim": bool(params.get("slim", True)),
        "suite": params.get("suite", "bookworm"),
        "variant": params.get("variant", "minbase"),
        "components": sorted(params.get("components") or ["main"]),
        "packages": sorted(set(params.get("packages") or [])),
    }


def read_stamp(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def cache_lock(cache_root):
    """Exclusive lock beside the cached root: one build or copy at a time, so a
    lab.yml run never copies a root that another run is rebuilding."""
    directory = os.path.dirname(cache_root)
    os.makedirs(directory, mode=0o755, exist_ok=True)
    with open(os.path.join(directory, ".stratus-lab.lock"), "a", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def remove_tree(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


SLIM_DPKG_CFG = """\
# Stratus lab host: no documentation, manual pages or translations, so that
# each host's copy of the root is smaller and quicker to make and remove.
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
path-exclude=/usr/share/lintian/*
"""


def slim_root(root):
    """Drop what SLIM_DPKG_CFG keeps out of later installs from the root now."""
    with open(
        os.path.join(root, "etc/dpkg/dpkg.cfg.d/stratus-lab-slim"), "w", encoding="utf-8"
    ) as handle:
        handle.write(SLIM_DPKG_CFG)
    for rel, keep in (
        ("usr/share/doc", "copyright"),
        ("usr/share/man", None),
        ("usr/share/info", None),
        ("usr/share/locale", "locale.alias"),
        ("usr/share/lintian", None),
    ):
        top = os.path.join(root, rel)
        for dirpath, _dirnames, filenames in os.walk(top, topdown=False):
            for name in filenames:
                if name != keep:
                    os.unlink(os.path.join(dirpath, name))
            if dirpath != top and not os.listdir(dirpath):
                os.rmdir(dirpath)


def prepare_root(root, slim):
    """Make a fresh debootstrap root bootable as a lab host, and anonymous."""
    if slim:
        slim_root(root)
    for unit in ENABLED_UNITS:
        run(["systemctl", f"--root={root}", "enable", unit])
    # apt's periodic runs would hold the dpkg lock in the middle of a rollout.
    for unit in MASKED_UNITS:
        run(["systemctl", f"--root={root}", "mask", unit])
    # Each host gets its own machine-id and SSH host keys when it is copied.
    with open(os.path.join(root, "etc/machine-id"), "w", encoding="utf-8"):
        pass
    dbus_id = os.path.join(root, "var/lib/dbus/machine-id")
    if os.path.lexists(dbus_id):
        os.unlink(dbus_id)
    os.symlink("/etc/machine-id", dbus_id)
    ssh_dir = os.path.join(root, "etc/ssh")
    for name in os.listdir(ssh_dir):
        if name.startswith("ssh_host_"):
            os.unlink(os.path.join(ssh_dir, name))
    for name in ("etc/hostname", "etc/resolv.conf"):
        remove_tree(os.path.join(root, name))
    # Package lists go stale at once (hosts run apt-get update themselves) and
    # downloaded packages are only weight in every copy.
    for rel, keep in (
        ("var/lib/apt/lists", "lock"),
        ("var/cache/apt/archives", "lock"),
        ("var/cache/apt", ""),
    ):
        directory = os.path.join(root, rel)
        for name in os.listdir(directory):
            path = os.path.join(directory, name)
            if os.path.isfile(path) and not os.path.islink(path) and name != keep:
                os.unlink(path)


def cmd_rootfs(params):
    path = os.path.abspath(params["path"]).rstrip("/")
    with cache_lock(path):
        return _rootfs(params, path)


def _rootfs(params, path):
    stamp_path = path + ".stamp"
    want = wanted_stamp(params)
    check = bool(params.get("check"))
    if params.get("state", "present") == "absent":
        present = [
            p for p in (path, path + ".new", path + ".old", stamp_path) if os.path.lexists(p)
        ]
        for item in present if not check else []:
            remove_tree(item)
        return {"changed": bool(present), "built": False}

    if read_stamp(stamp_path) == want and os.path.isfile(
        os.path.join(path, "usr/lib/systemd/systemd")
    ):
        return {"changed": False, "built": False, "stamp": want}
    mirror = params.get("mirror") or ""
    if not mirror:
        raise Failure(
            "no Debian mirror: none of this machine's apt sources serves "
            f"{want['suite']}; set stratus_lab_mirror"
        )
    if check:
        return {"changed": True, "built": False, "stamp": want}
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    # The stamp goes first: a build that dies half way is redone next time.
    if os.path.lexists(stamp_path):
        os.unlink(stamp_path)
    new, old = path + ".new", path + ".old"
    for stale in (new, old):
        remove_tree(stale)
    cmd = ["debootstrap", f"--variant={want['variant']}"]
    if want["packages"]:
        cmd.append("--include=" + ",".join(want["packages"]))
    cmd += ["--components=" + ",".join(want["components"]), want["suite"], new, mirror]
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise Failure(
            f"debootstrap failed with rc {proc.returncode}",
            cmd=cmd,
            stderr=proc.stderr[-4000:],
            debootstrap_log=tail(os.path.join(new, "debootstrap/debootstrap.log")),
        )
    prepare_root(new, want["slim"])
    if os.path.lexists(path):
        os.rename(path, old)
    os.rename(new, path)
    remove_tree(old)
    with open(stamp_path + ".tmp", "w", encoding="utf-8") as handle:
        json.dump(want, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.rename(stamp_path + ".tmp", stamp_path)
    return {
        "changed": True,
        "built": True,
        "seconds": round(time.monotonic() - started, 1),
        "mirror": mirror,
        "stamp": want,
    }


# --- host --------------------------------------------------------------------


def _proc_stat(pid):
    """(state, ppid) of pid, or None when it does not exist."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as handle:
            data = handle.read()
    except OSError:
        return None
    fields = data.rsplit(")", 1)[1].split()
    return fields[0], int(fields[1])


def alive(pid):
    """True when pid exists and is not a zombie (PID 1 here may reap late)."""
    stat = _proc_stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def leader_pid(pidfile, root):
    """The live nspawn leader of root according to pidfile, or 0."""
    try:
        with open(pidfile, encoding="utf-8") as handle:
            pid = int(handle.read().strip() or 0)
    except (OSError, ValueError):
        return 0
    if pid <= 0 or not alive(pid):
        return 0
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            argv = handle.read().decode("utf-8", "replace").split("\0")
    except OSError:
        return 0
    if not argv or os.path.basename(argv[0]) != "systemd-nspawn":
        return 0
    if root not in argv and f"--directory={root}" not in argv:
        return 0
    return pid


def host_pids(root):
    """Live processes whose root directory is the host's root: the host's processes.

    Compared by device and inode: inside its own mount namespace a host's
    process sees its root as "/", so the link text says nothing.
    """
    try:
        want = os.stat(root)
    except OSError:
        return []
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            have = os.stat(f"/proc/{entry}/root")
        except OSError:
            continue
        if (have.st_dev, have.st_ino) == (want.st_dev, want.st_ino) and alive(int(entry)):
            pids.append(int(entry))
    return pids


def wait_gone(pids, timeout):
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in pids):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def send(pids, sig):
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def stop_host(root, pidfile, timeout):
    """Power the host off, kill what does not go. Returns the seconds it took, or None."""
    started = time.monotonic()
    leader = leader_pid(pidfile, root)
    procs = host_pids(root)
    if not leader and not procs:
        if os.path.lexists(pidfile):
            os.unlink(pidfile)
        return None
    if leader:
        # nspawn passes SIGTERM on to the host's PID 1 as its --kill-signal
        # (SIGRTMIN+4: systemd powers off), then exits when the host is gone.
        send([leader], signal.SIGTERM)
    else:
        # The leader died but the host lives on: power off its PID 1 directly.
        parents = {pid: (_proc_stat(pid) or ("", 0))[1] for pid in procs}
        send([pid for pid, ppid in parents.items() if ppid not in parents], signal.SIGRTMIN + 4)
    watched = ([leader] if leader else []) + procs
    if not wait_gone(watched, timeout):
        send(host_pids(root), signal.SIGKILL)
        if leader:
            send([leader], signal.SIGKILL)
    send(host_pids(root), signal.SIGKILL)
    wait_gone(([leader] if leader else []) + host_pids(root), 10)
    if os.path.lexists(pidfile):
        os.unlink(pidfile)
    return round(time.monotonic() - started, 2)


def start_host(name, root, params):
    pidfile, logfile = params["pidfile"], params["logfile"]
    # Processes of an earlier boot whose leader died would hold the veth name.
    orphans = host_pids(root)
    if orphans:
        send(orphans, signal.SIGKILL)
        wait_gone(orphans, 10)
    for directory in (os.path.dirname(pidfile), os.path.dirname(logfile)):
        os.makedirs(directory, mode=0o755, exist_ok=True)
    nspawn = shutil.which("systemd-nspawn") or "/usr/bin/systemd-nspawn"
    cmd = [
        nspawn,
        "-b",
        "-D",
        root,
        "-M",
        name,
        "--register=no",
        "--keep-unit",
        f"--network-bridge={params.get('bridge', 'stratuslab0')}",
        "--resolv-conf=off",
        "--console=passive",
        "--kill-signal=SIGRTMIN+4",
        *(params.get("extra_args") or []),
    ]
    started = time.monotonic()
    # One log per boot; the one before is kept as <log>.1.
    if os.path.exists(logfile):
        os.replace(logfile, logfile + ".1")
    with open(logfile, "ab") as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            cwd="/",
        )
    with open(pidfile + ".tmp", "w", encoding="utf-8") as handle:
        handle.write(f"{proc.pid}\n")
    os.rename(pidfile + ".tmp", pidfile)
    # Wait until the host's init runs, or nspawn gives up, so errors show here.
    deadline = started + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            if os.path.lexists(pidfile):
                os.unlink(pidfile)
            raise Failure(
                f"systemd-nspawn for {name} exited with rc {proc.returncode}",
                cmd=cmd,
                log=tail(logfile),
            )
        if host_pids(root):
            break
        time.sleep(0.05)
    else:
        raise Failure(f"{name}: no init process after 15 s", cmd=cmd, log=tail(logfile))
    answered = wait_ssh(params.get("ssh_address"), float(params.get("ssh_wait") or 0), proc)
    return proc.pid, (round(answered - started, 2) if answered else None)


def wait_ssh(address, timeout, proc):
    """When (monotonic) address:22 sent an SSH banner; None if not within timeout."""
    if not address or timeout <= 0:
        return None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection((address, 22), timeout=1) as conn:
                conn.settimeout(2)
                if conn.recv(64).startswith(b"SSH-"):
                    return time.monotonic()
        except OSError:
            pass
        time.sleep(0.05)
    return None


def create_host(name, root, source):
    if not source:
        raise Failure(f"no cached root given; cannot create {root}")
    source = os.path.abspath(source).rstrip("/")
    new = root + ".new"
    remove_tree(new)
    os.makedirs(os.path.dirname(root), mode=0o755, exist_ok=True)
    with cache_lock(source):
        if not os.path.isfile(os.path.join(source, "usr/lib/systemd/systemd")):
            raise Failure(f"the cached root {source} is missing; cannot create {root}")
        run(["cp", "-a", "--reflink=auto", source, new])
    # Own SSH host keys and machine-id for each host.
    run(["ssh-keygen", "-A", "-f", new])
    with open(os.path.join(new, "etc/machine-id"), "w", encoding="utf-8") as handle:
        handle.write(uuid.uuid4().hex + "\n")
    with open(os.path.join(new, HOST_MARKER), "w", encoding="utf-8") as handle:
        json.dump(
            {"name": name, "source": source, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")},
            handle,
        )
        handle.write("\n")
    os.rename(new, root)


def mounted_below(root):
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        for line in handle:
            point = line.split()[4]
            if point == root or point.startswith(root + "/"):
                return point
    return None


def cmd_host(params):
    name = params["name"]
    root = os.path.abspath(params["root"]).rstrip("/")
    if root.count("/") < 2:
        raise Failure(f"refusing to use {root!r} as a lab host root")
    params.setdefault("pidfile", f"/run/stratus-lab/{name}.pid")
    params.setdefault("logfile", f"/var/log/stratus-lab/{name}.log")
    state = params.get("state", "running")
    timeout = int(params.get("stop_timeout", 30))
    check = bool(params.get("check"))

    leader = leader_pid(params["pidfile"], root)
    exists = os.path.isdir(root)
    result = {
        "changed": False,
        "name": name,
        "pid": leader,
        "was_running": bool(leader),
        "created": False,
        "root": root,
    }

    if state == "absent":
        if not exists and not leader and not os.path.lexists(root + ".new"):
            return result
        if exists and not os.path.isfile(os.path.join(root, HOST_MARKER)):
            raise Failure(f"{root} is not a lab host root (no /{HOST_MARKER}); not removing it")
        if check:
            return {**result, "changed": True}
        result.update(changed=True, pid=0, stop_seconds=stop_host(root, params["pidfile"], timeout))
        busy = mounted_below(root)
        if busy:
            raise Failure(f"{busy} is still mounted; not removing {root}")
        remove_tree(root)
        remove_tree(root + ".new")
        return result

    if state == "stopped":
        if check:
            return {**result, "changed": bool(leader or (exists and host_pids(root)))}
        seconds = stop_host(root, params["pidfile"], timeout) if exists or leader else None
        result.update(changed=seconds is not None, pid=0, stop_seconds=seconds)
        return result

    if state == "present":
        if not exists:
            if not check:
                create_host(name, root, params.get("source"))
            result.update(changed=True, created=True)
        return result

    if state != "running":
        raise Failure(f"unknown state {state!r}")
    if check:
        return {**result, "changed": not leader or bool(params.get("restart"))}
    if not exists:
        raise Failure(f"{root} does not exist; create it with state=present first")
    if leader and not params.get("restart"):
        return result
    if leader:
        result["stop_seconds"] = stop_host(root, params["pidfile"], timeout)
    pid, boot_seconds = start_host(name, root, params)
    result.update(changed=True, pid=pid, boot_seconds=boot_seconds)
    return result


COMMANDS = {"sources": cmd_sources, "rootfs": cmd_rootfs, "host": cmd_host}


def main(argv):
    if len(argv) != 2 or argv[1] not in COMMANDS:
        print(
            f"usage: {argv[0]} {{{'|'.join(COMMANDS)}}} (parameters as JSON in ${PARAMS_ENV})",
            file=sys.stderr,
        )
        return 2
    try:
        params = json.loads(os.environ.get(PARAMS_ENV) or "{}")
        result = COMMANDS[argv[1]](params)
    except Failure as exc:
        print(json.dumps({"changed": False, "failed": True, "msg": exc.msg, **exc.extra}))
        print(exc.msg, file=sys.stderr)
        for key, value in exc.extra.items():
            print(f"--- {key}:\n{value}", file=sys.stderr)
        return 1
    except (KeyError, ValueError, OSError) as exc:
        print(json.dumps({"changed": False, "failed": True, "msg": f"{type(exc).__name__}: {exc}"}))
        print(f"{argv[1]}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
