# chapter: final
"""Capabilities: root's power, cut into pieces, and most pieces taken away.

Since Linux 2.2, "root" is not one privilege but about forty, each checked on
its own: CAP_CHOWN to chown a file you do not own, CAP_SYS_ADMIN to mount,
CAP_SYS_MODULE to load a kernel module, and so on (capabilities(7)). A process
carries five sets of them:

    bounding     the most it can ever have again, even by exec'ing a setuid file
    permitted    what it may switch on
    effective    what the kernel checks right now
    inheritable  what survives exec into a file with file capabilities
    ambient      what survives exec into an ordinary file

Root in a container keeps Docker's 14 defaults (`DEFAULT`): enough to chown,
bind port 80 or ping, too little to mount, load modules, set the clock or
read the kernel's log. The bounding set is cut first (it needs CAP_SETPCAP),
then the user is switched, then the other sets are set once, with capset(2).
"""

import os

from . import libc
from .errors import DockyardError

# capabilities(7), by number: bit N of a set is capability N.
NAMES = ("CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP LINUX_IMMUTABLE "
         "NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE SYS_RAWIO SYS_CHROOT "
         "SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE "
         "AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ "
         "PERFMON BPF CHECKPOINT_RESTORE").split()
NUMBERS = {f"CAP_{name}": number for number, name in enumerate(NAMES)}

# Docker's defaults: what a root process commonly needs and cannot escape with.
DEFAULT = ("CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
           "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
           "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE")


def last_cap() -> int:
    """The highest capability this kernel knows."""
    with open("/proc/sys/kernel/cap_last_cap") as f:
        return int(f.read())


def canonical(name: str) -> str:
    """'net_admin', 'NET_ADMIN' or 'CAP_NET_ADMIN' -> 'CAP_NET_ADMIN'; 'all' -> 'ALL'."""
    upper = name.strip().upper()
    if upper in ("ALL", "CAP_ALL"):
        return "ALL"
    full = upper if upper.startswith("CAP_") else f"CAP_{upper}"
    if full not in NUMBERS:
        raise DockyardError(f"unknown capability: {name!r}",
                            hint="name one of capabilities(7), with or without CAP_: NET_ADMIN, SYS_PTRACE, ALL")
    return full


def every() -> list[str]:
    """Every capability this kernel has, by name."""
    return [f"CAP_{name}" for name in NAMES[:last_cap() + 1]]


def resolve(add: list[str], drop: list[str], privileged: bool = False) -> list[str]:
    """The container's capabilities: the defaults (or all), less --cap-drop, plus --cap-add."""
    added, dropped = {canonical(n) for n in add}, {canonical(n) for n in drop}
    caps = set(every() if privileged else DEFAULT)
    caps = set() if "ALL" in dropped else caps - dropped
    caps |= set(every()) if "ALL" in added else added  # as Docker: an explicit add beats a drop
    return sorted(caps, key=NUMBERS.__getitem__)


def mask(names: list[str]) -> int:
    """A bit mask of the named capabilities."""
    return sum(1 << NUMBERS[name] for name in names)


def drop_bounding(keep: int) -> None:
    """Remove from the bounding set every capability not in `keep`: gone for good, exec included."""
    for number in range(last_cap() + 1):
        if not keep & 1 << number:
            libc.prctl(libc.PR_CAPBSET_DROP, number)


def set_process_sets(keep: int, is_root: bool) -> None:
    """Leave effective = permitted = `keep` (none for a non-root user), inheritable and ambient empty."""
    _, permitted, _ = libc.capget()
    # A process cannot give itself what it lacks (rootless, or an engine without CAP_SYS_RESOURCE).
    have = keep & permitted if is_root else 0
    libc.capset(have, have, 0)
    libc.prctl(libc.PR_CAP_AMBIENT, libc.PR_CAP_AMBIENT_CLEAR_ALL)

