# chapter: final
"""Device access: which device nodes a container may open, whatever nodes it has.

A device node is only a name for a (type, major, minor) triple: anyone with
CAP_MKNOD can make /tmp/k as `c 1 11`, which is the host's /dev/kmsg, and an
image layer can ship such a node ready-made. Hiding the host's /dev is not
enough; the kernel must refuse to open the devices themselves. The cgroup
"devices" controller does that (cgroup v1): a list of rules

    type major:minor access       c 1:3 rwm    /dev/null: read, write, mknod
                                  c 136:* rwm  every pty of /dev/pts
                                  c *:* m      any char node may be made, not opened

written to devices.deny ("a": nothing) and devices.allow, per cgroup. cgroup
v2 has no such files: there the same rules become a BPF program attached to
the container's cgroup, which the kernel asks at each open (devices_bpf.py).
"""

import os
import stat

from . import cgroups, config
from .errors import DockyardError

# Docker's default rules, less /dev/net/tun: the standard nodes and the container's ptys.
DEFAULT_RULES = ("c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",
                 "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm")


def parse(text: str) -> dict:
    """--device HOST[:CONTAINER][:rwm] -> {host, container, access, rule}, checked on the host."""
    parts = text.split(":")
    access = parts.pop() if len(parts) > 1 and set(parts[-1]) <= set("rwm") and parts[-1] else "rwm"
    host, container = parts[0], parts[1] if len(parts) > 1 else parts[0]
    try:
        mode = os.stat(host)
    except OSError as err:
        raise DockyardError(f"cannot use device {host}: {err.strerror}",
                            hint="give the host path of a device node, e.g. --device /dev/fuse") from err
    if not (stat.S_ISCHR(mode.st_mode) or stat.S_ISBLK(mode.st_mode)) or not container.startswith("/"):
        raise DockyardError(f"cannot use device {text!r}: not a device node, or not an absolute path inside",
                            hint="write it as --device /dev/HOST[:/dev/INSIDE][:rwm]")
    kind = "c" if stat.S_ISCHR(mode.st_mode) else "b"
    rule = f"{kind} {os.major(mode.st_rdev)}:{os.minor(mode.st_rdev)} {access}"
    return {"host": host, "container": container, "access": access, "rule": rule}


def restrict(container_id: str, devices: list[dict], privileged: bool) -> None:
    """Let the container's cgroup (made by cgroups.create) open only the defaults and `devices`."""
    layout = cgroups.detect()
    rules = [*DEFAULT_RULES, *(device["rule"] for device in devices)]
    if privileged or os.geteuid() != 0:
        return  # rootless: no cgroup of its own, and a user namespace cannot open host devices anyway
    if layout.version == 2:
        from . import devices_bpf  # only v2 needs the program
        devices_bpf.attach(cgroups.cgroup_dirs(layout, container_id)[""], rules)
        return
    path = os.path.join(layout.trees.get("devices", ""), config.CGROUP_PARENT, container_id)
    if layout.version == 1 and os.path.isdir(path):
        write(path, "devices.deny", "a")  # start from nothing, then allow the list
        for rule in rules:
            write(path, "devices.allow", rule)


def write(path: str, name: str, value: str) -> None:
    with open(os.path.join(path, name), "w") as f:
        f.write(value)
