"""`doctor`: can this machine run the workshop? Each check, and what to do when it fails."""

import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass

from .. import chapters
from . import clean

NAMESPACES = ("mnt", "uts", "ipc", "pid", "net", "user", "cgroup")
CONTROLLERS = ("memory", "cpu", "pids")
MIN_FREE = 1 << 30  # images, layers and a rootfs per test: a GiB is plenty


@dataclass
class Finding:
    """One check: ok (True), a problem (False) or a warning (None), and what to do."""
    ok: bool | None
    what: str
    detail: str
    hint: str = ""


def check_root() -> Finding:
    if os.geteuid() == 0:
        return Finding(True, "root", "running as root")
    return Finding(False, "root", "not root: containers need root, and so do most tests",
                   "sudo python3 -m tools.workshop doctor (in the VM: vagrant ssh, then sudo ...)")


def check_python() -> Finding:
    version = ".".join(map(str, sys.version_info[:3]))
    if sys.version_info >= (3, 10):
        return Finding(True, "python", f"{version} at {sys.executable}")
    return Finding(False, "python", f"{version} is too old (3.10 or later)", "use the distribution's python3")


def check_pytest() -> Finding:
    for python in (sys.executable, "/usr/bin/python3"):
        found = subprocess.run([python, "-c", "import pytest; print(pytest.__version__)"],
                               capture_output=True, text=True)
        if found.returncode == 0:
            return Finding(True, "pytest", f"{found.stdout.strip()} for {python}")
    return Finding(False, "pytest", "not installed; `check` installs nothing itself",
                   "sudo apt-get install python3-pytest (or sh tools/packages.sh test, before class)")


def check_kernel() -> Finding:
    release = platform.release()
    numbers = tuple(int(n) for n in release.split("-")[0].split(".")[:2] if n.isdigit())
    if numbers >= (5, 19):
        return Finding(True, "kernel", f"Linux {release}")
    return Finding(None, "kernel", f"Linux {release}: idmapped mounts (chapter 4, --userns) need 5.19",
                   "use the Vagrant box (Ubuntu 24.04) for the whole course")


def check_namespaces() -> Finding:
    missing = [n for n in NAMESPACES if not os.path.exists(f"/proc/self/ns/{n}")]
    if missing:
        return Finding(False, "namespaces", f"this kernel lacks {', '.join(missing)} namespaces",
                       "use the Vagrant box: its kernel has them all")
    return Finding(True, "namespaces", " ".join(NAMESPACES))


def check_userns() -> Finding:
    allowed = read("/proc/sys/user/max_user_namespaces", "1")
    if allowed == "0":
        return Finding(False, "user namespaces", "disabled (user.max_user_namespaces = 0)",
                       "sudo sysctl -w user.max_user_namespaces=15000")
    if read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns", "0") == "1":
        return Finding(None, "user namespaces", "AppArmor keeps them from ordinary users (rootless tests fail)",
                       "sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 (the Vagrant box does it)")
    return Finding(True, "user namespaces", f"allowed ({allowed} per user)")


def check_overlay() -> Finding:
    if "overlay" in read("/proc/filesystems", "").split():
        return Finding(True, "overlayfs", "available (chapter 4)")
    if subprocess.run(["modprobe", "overlay"], capture_output=True).returncode == 0:
        return Finding(True, "overlayfs", "loaded now (modprobe overlay)")
    return Finding(False, "overlayfs", "not in /proc/filesystems (chapter 4 needs it)",
                   "sudo modprobe overlay; or run chapter 4 on with --storage-driver vfs")


def cgroup_layout() -> tuple[str, list[str]]:
    """'v2', 'v1', 'hybrid' or 'none', and the controllers we can use."""
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split(" - ") for line in f]
    v2 = [m[0].split()[4] for m in mounts if m[1].split()[0] == "cgroup2"]
    v1 = {opt for m in mounts if m[1].split()[0] == "cgroup" for opt in m[1].split()[2].split(",")}
    if "/sys/fs/cgroup" in v2:
        return "v2", read("/sys/fs/cgroup/cgroup.controllers", "").split()
    controllers = sorted(v1 & set(CONTROLLERS))
    if controllers:
        return ("hybrid" if v2 else "v1"), controllers
    return "none", []


def check_cgroups() -> Finding:
    layout, controllers = cgroup_layout()
    missing = [c for c in CONTROLLERS if c not in controllers]
    if layout == "none":
        return Finding(False, "cgroups", "no cgroup hierarchy is mounted (chapter 3 needs one)",
                       "mount -t cgroup2 none /sys/fs/cgroup, or use the Vagrant box")
    if missing:
        return Finding(None, "cgroups", f"{layout}; missing controllers: {', '.join(missing)}",
                       f"v2: echo +{missing[0]} > /sys/fs/cgroup/cgroup.subtree_control; "
                       f"or boot without cgroup_disable={missing[0]}")
    note = " (students on Ubuntu 24.04 meet v2; chapter 3's lesson covers both)" if layout != "v2" else ""
    return Finding(True, "cgroups", f"{layout} with {', '.join(controllers)}{note}")


def check_busybox() -> Finding:
    busybox = "/bin/busybox"
    if not os.path.exists(busybox):
        return Finding(False, "busybox", "/bin/busybox is missing (every test's rootfs is made from it)",
                       "sudo apt-get install busybox-static")
    static = b"interpreter" not in subprocess.run(["file", "-L", busybox], capture_output=True).stdout \
        if shutil.which("file") else True
    if not static:
        return Finding(False, "busybox", "/bin/busybox is dynamically linked: it cannot run in a bare rootfs",
                       "sudo apt-get install busybox-static")
    return Finding(True, "busybox", busybox)


def check_disk() -> Finding:
    short = []
    for path in ("/tmp", chapters.ROOT):
        free = shutil.disk_usage(path).free
        if free < MIN_FREE:
            short.append(f"{path} has {free >> 20} MiB free")
    if short:
        return Finding(False, "disk", "; ".join(short), "free at least 1 GiB (python3 -m tools.workshop clean first)")
    return Finding(True, "disk", f"{shutil.disk_usage('/tmp').free >> 30} GiB free in /tmp")


def check_leftovers() -> Finding:
    found = clean.leftovers()
    if found:
        return Finding(None, "leftovers", f"{len(found)} left by earlier runs (e.g. {found[0]})",
                       "sudo python3 -m tools.workshop clean")
    return Finding(True, "leftovers", "none")


CHECKS = (check_root, check_python, check_pytest, check_kernel, check_namespaces, check_userns,
          check_overlay, check_cgroups, check_busybox, check_disk, check_leftovers)


def diagnose() -> list[Finding]:
    return [check() for check in CHECKS]


def read(path: str, default: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default
