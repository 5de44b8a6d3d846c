# chapter: final
"""Root in a container is not root on the host: the security profile and the final step.

Namespaces give a container its own view; they do not take root's power away.
Root inside still holds every capability, may make every system call and open
every device node it can create. The profile narrows that, in layers that do
not trust each other:

    capabilities     Docker's 14 defaults, not ~41           (capabilities.py)
    no_new_privs     exec never grants more: setuid files and file caps do nothing
    seccomp          an allowlist of system calls             (seccomp.py)
    devices          only /dev/null, zero, ..., pts may be opened (devices.py)
    masked paths     /proc and /sys files that describe or steer the host

Every process that enters a container goes through one function,
`final_step`: PID 1, `--init`'s PID 1 (whose child inherits it across fork),
`exec`. Its order matters:

    own the terminal          -t: chown the pty to the user, bind PID 1's on /dev/console
    drop the bounding set     while CAP_SETPCAP is still ours
    set no_new_privs
    load the seccomp filter   before capset: without no_new_privs it needs CAP_SYS_ADMIN
    switch to the user        setuid from root clears a non-root user's capabilities
    set the other sets        effective = permitted = the profile's; inheritable, ambient empty
    exec
"""

import argparse
import json
import os
from typing import NoReturn

from . import capabilities, devices, libc, mounts, process, seccomp, users  # users: now, before pivot_root or setns
from .errors import UsageError
from .profile import Profile
from .spec import Mount

TMPFS_FLAGS = {"ro": libc.MS_RDONLY, "nosuid": libc.MS_NOSUID, "nodev": libc.MS_NODEV,
               "noexec": libc.MS_NOEXEC}


# --8<-- [start:final_step]
def final_step(profile: Profile, user: str, argv: list[str], env: dict[str, str]) -> NoReturn:
    """Become the container's process for good, then exec `argv`. Call inside the container."""
    confine(profile, user, env)
    process.exec_command(argv, env)


def confine(profile: Profile, user: str, env: dict[str, str]) -> None:
    """Switch to `user` and take away what the profile does not grant; irreversible."""
    if has_own_terminal():
        take_terminal(user)  # while CAP_CHOWN and CAP_SYS_ADMIN are still ours
    keep = capabilities.mask(profile.capabilities)
    capabilities.drop_bounding(keep)
    if profile.no_new_privileges:
        libc.prctl(libc.PR_SET_NO_NEW_PRIVS, 1)
    load_seccomp(profile)
    if user:
        users.switch_user(user, env)
    capabilities.set_process_sets(keep, is_root=os.getuid() == 0)
# --8<-- [end:final_step]


# --8<-- [start:prepare_root]
def prepare_root(rootfs: str, profile: Profile) -> None:
    """Finish the mount tree as the profile says: masks, devices, tmpfs, read-only. Call before pivot."""
    if profile.privileged:
        unmask(rootfs)
    else:
        mask(rootfs, profile)
    mounts.mount_all(rootfs, [Mount(device["container"], device["host"]) for device in profile.devices])
    for item in profile.tmpfs:
        mount_tmpfs(rootfs, item)
    own_ptys_by_tty_group(mounts.inside(rootfs, "/dev/pts"))
    if profile.read_only:
        # Only the root mount: /proc, /dev, volumes and --tmpfs keep their own flags.
        libc.mount(None, rootfs, None, libc.MS_BIND | libc.MS_REMOUNT | libc.MS_RDONLY)
# --8<-- [end:prepare_root]


def mask(rootfs: str, profile: Profile) -> None:
    """Hide the masked paths (a file under /dev/null, a directory under an empty read-only tmpfs);
    bind the read-only ones read-only."""
    for path in profile.masked_paths:
        target = mounts.inside(rootfs, path)
        if os.path.isdir(target):
            libc.mount("tmpfs", target, "tmpfs", libc.MS_RDONLY | mounts.NOSUID_NODEV_NOEXEC)
        elif os.path.exists(target):
            libc.mount("/dev/null", target, None, libc.MS_BIND)
    for path in profile.readonly_paths:
        target = mounts.inside(rootfs, path)
        if os.path.exists(target):
            libc.mount(target, target, None, libc.MS_BIND | libc.MS_REC)
            libc.mount(None, target, None, libc.MS_BIND | libc.MS_REMOUNT | libc.MS_RDONLY | mounts.NOSUID_NODEV_NOEXEC)


def unmask(rootfs: str) -> None:
    """--privileged: lift chapter 2's masks and read-only binds from /proc, and make /sys writable, as Docker."""
    for name in (*mounts.PROC_MASKED, *mounts.PROC_READ_ONLY):
        try:
            libc.umount(mounts.inside(rootfs, f"/proc/{name}"), libc.MNT_DETACH)
        except OSError:
            pass  # not there on this kernel, so never masked
    sys_dir = mounts.inside(rootfs, "/sys")
    try:
        libc.mount(None, sys_dir, None, libc.MS_REMOUNT | mounts.NOSUID_NODEV_NOEXEC)
    except OSError:  # rootless: /sys is a bind of the host's (see mounts.mount_sys)
        libc.mount(None, sys_dir, None, libc.MS_BIND | libc.MS_REMOUNT | mounts.NOSUID_NODEV_NOEXEC)


def own_ptys_by_tty_group(pts: str) -> None:
    """New ptys belong to group 5 (tty), mode 620, as on the host; needs gid 5 mapped (not rootless)."""
    try:
        libc.mount("devpts", pts, "devpts", libc.MS_REMOUNT | libc.MS_NOSUID | libc.MS_NOEXEC,
                   "newinstance,gid=5,mode=0620,ptmxmode=0666")
    except OSError:
        pass  # a rootless container maps one group only: its ptys keep that group


def mount_tmpfs(rootfs: str, item: str) -> None:
    """Mount a tmpfs for --tmpfs PATH[:OPTIONS] (noexec, nosuid, nodev unless told otherwise)."""
    path, _, options = item.partition(":")
    flags, data = mounts.NOSUID_NODEV_NOEXEC, []
    for word in filter(None, options.split(",")):
        if word in TMPFS_FLAGS:
            flags |= TMPFS_FLAGS[word]
        elif word in ("exec", "suid", "dev"):
            flags &= ~TMPFS_FLAGS[f"no{word}"]
        elif word != "rw":
            data.append(word)
    target = mounts.inside(rootfs, path)
    os.makedirs(target, exist_ok=True)
    libc.mount("tmpfs", target, "tmpfs", flags, ",".join(data) or None)


def has_own_terminal() -> bool:
    """Whether stdin is a pty of the container's own devpts (-t), not a terminal of the host's (-i)."""
    try:
        return os.isatty(0) and os.fstat(0).st_dev == os.stat("/dev/pts").st_dev
    except OSError:
        return False


def take_terminal(user: str) -> None:
    """Give the user its pty (as Docker does); PID 1's pty is also /dev/console."""
    if user:
        from .users import read_text
        from .imageconfig import lookup_user
        uid = lookup_user(user, read_text("/etc/passwd"), read_text("/etc/group"))[0]
        os.fchown(0, uid, -1)  # the group stays tty (5), mode 620: others may write to it, as with `write`
    if os.getpid() == 1:
        console = "/dev/console"
        if not os.path.exists(console):
            os.close(os.open(console, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
        libc.mount(os.ttyname(0), console, None, libc.MS_BIND)


def load_seccomp(profile: Profile) -> None:
    """Attach the profile's filter, if it has one."""
    if profile.seccomp == "unconfined":
        return
    rules = seccomp.default_profile() if profile.seccomp == "default" else json.loads(profile.seccomp)
    seccomp.load(rules, profile.capabilities)


# --- from the command line ------------------------------------------------------------

def add_arguments(p: argparse.ArgumentParser) -> None:
    """run's (and create's) security flags."""
    p.add_argument("--cap-add", action="append", default=[], metavar="CAP", help="add a capability (or ALL)")
    p.add_argument("--cap-drop", action="append", default=[], metavar="CAP", help="drop a capability (or ALL)")
    p.add_argument("--privileged", action="store_true",
                   help="all capabilities and devices, no seccomp filter, no masked paths")
    p.add_argument("--security-opt", action="append", default=[], metavar="OPT",
                   help="no-new-privileges[=false], seccomp=unconfined|PROFILE.json")
    p.add_argument("--device", action="append", default=[], metavar="HOST[:CONTAINER][:rwm]",
                   help="let the container use a host device")
    p.add_argument("--read-only", action="store_true", help="mount the container's root filesystem read-only")
    p.add_argument("--tmpfs", action="append", default=[], metavar="PATH[:OPTIONS]",
                   help="mount a tmpfs at PATH (noexec,nosuid,nodev; options such as size=64m,mode=1777)")


def profile_from(args: argparse.Namespace) -> Profile:
    """The profile that run's flags ask for."""
    profile = Profile(capabilities=capabilities.resolve(args.cap_add, args.cap_drop, args.privileged),
                      privileged=args.privileged, devices=[devices.parse(text) for text in args.device],
                      read_only=args.read_only, tmpfs=[checked_tmpfs(item) for item in args.tmpfs])
    if args.privileged:
        profile.seccomp = "unconfined"
    for option in args.security_opt:
        apply_option(profile, option)
    return profile


def checked_tmpfs(item: str) -> str:
    path = item.partition(":")[0]
    if not path.startswith("/") or os.path.normpath(path) == "/":
        raise UsageError(f"invalid --tmpfs {item!r}", hint="give an absolute path other than /, e.g. --tmpfs /run:size=64m")
    return item


def apply_option(profile: Profile, option: str) -> None:
    """Apply one --security-opt KEY[=VALUE] (Docker also accepts KEY:VALUE)."""
    key, sep, value = option.partition("=")
    if not sep:
        key, _, value = option.partition(":")
    if key == "no-new-privileges":
        if value not in ("", "true", "false"):
            raise UsageError(f"invalid --security-opt {option!r}", hint="use no-new-privileges or no-new-privileges=false")
        profile.no_new_privileges = value != "false"
    elif key == "seccomp" and value:
        profile.seccomp = value if value == "unconfined" else json.dumps(seccomp.read_profile(value))
    else:
        raise UsageError(f"unsupported --security-opt {option!r}",
                         hint="use no-new-privileges[=false], seccomp=unconfined or seccomp=PROFILE.json")

