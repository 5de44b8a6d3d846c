# chapter: final
"""config.json's mount options, as mount(2) takes them: flags, or filesystem data.

The runtime spec writes mounts as fstab does, a list of words: "nosuid",
"ro", "rbind", "mode=755". Some are MS_* flags for mount(2); the rest go to
the filesystem, comma-joined, as its data string. Propagation words
(rprivate, shared ...) are flags too, applied by a second mount(2) call.
"""

import os

from .. import cgroups, libc
from ..errors import DockyardError
from ..spec import Mount

MS_NOATIME, MS_NODIRATIME, MS_RELATIME = 0x400, 0x800, 1 << 21
MS_SYNCHRONOUS, MS_DIRSYNC, MS_MANDLOCK, MS_LAZYTIME = 0x10, 0x80, 0x40, 1 << 25
MS_UNBINDABLE, MS_SHARED = 1 << 17, 1 << 20

# word -> (flag to set, flag to clear); "ro" and the binds are handled apart.
FLAGS: dict[str, tuple[int, int]] = {
    "nosuid": (libc.MS_NOSUID, 0), "suid": (0, libc.MS_NOSUID),
    "nodev": (libc.MS_NODEV, 0), "dev": (0, libc.MS_NODEV),
    "noexec": (libc.MS_NOEXEC, 0), "exec": (0, libc.MS_NOEXEC),
    "noatime": (MS_NOATIME, 0), "atime": (0, MS_NOATIME),
    "nodiratime": (MS_NODIRATIME, 0), "diratime": (0, MS_NODIRATIME),
    "relatime": (MS_RELATIME, 0), "norelatime": (0, MS_RELATIME),
    "strictatime": (libc.MS_STRICTATIME, 0), "nostrictatime": (0, libc.MS_STRICTATIME),
    "sync": (MS_SYNCHRONOUS, 0), "async": (0, MS_SYNCHRONOUS),
    "dirsync": (MS_DIRSYNC, 0), "mand": (MS_MANDLOCK, 0), "nomand": (0, MS_MANDLOCK),
    "lazytime": (MS_LAZYTIME, 0), "nolazytime": (0, MS_LAZYTIME),
    "defaults": (0, 0), "rw": (0, 0),
}
PROPAGATION = {"private": libc.MS_PRIVATE, "rprivate": libc.MS_PRIVATE | libc.MS_REC,
               "slave": libc.MS_SLAVE, "rslave": libc.MS_SLAVE | libc.MS_REC,
               "shared": MS_SHARED, "rshared": MS_SHARED | libc.MS_REC,
               "unbindable": MS_UNBINDABLE, "runbindable": MS_UNBINDABLE | libc.MS_REC}
MOUNT_OPTIONS = {*FLAGS, *PROPAGATION, "ro", "bind", "rbind"}


# The kernel filesystems that the runtime itself mounts at their usual places
# (final/mounts.py build_root, with the options containerd and runc use).
MADE_BY_RUNTIME = {("/proc", "proc"), ("/sys", "sysfs"), ("/dev", "tmpfs"), ("/dev/pts", "devpts"),
                   ("/dev/shm", "tmpfs"), ("/dev/mqueue", "mqueue")}


def made_by_runtime(entry: dict) -> bool:
    return (entry.get("destination", "").rstrip("/"), entry.get("type")) in MADE_BY_RUNTIME


def to_mounts(entry: dict, bundle: str) -> list[Mount]:
    """One config.json mount as the runtime's Mounts (a "cgroup" mount is several)."""
    if entry.get("type") == "cgroup":
        return cgroup_mounts(entry.get("destination", "/sys/fs/cgroup"), "ro" in (entry.get("options") or []))
    return [to_mount(entry, bundle)]


def cgroup_mounts(destination: str, read_only: bool) -> list[Mount]:
    """The container's own cgroups at `destination`, as runc shows them.

    The child mounts these after entering its cgroup namespace, so each tree
    shows the container's cgroup as its root. On v2 that is one cgroup2
    mount; on v1 a tmpfs with one mount per hierarchy the host has (and the
    hybrid layout's cgroup2 at unified/).
    """
    flags = libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC
    layout = cgroups.detect()
    if layout.version == 2:
        return [Mount(destination, "cgroup2", "cgroup2", flags, read_only=read_only)]
    found = [Mount(destination, "tmpfs", "tmpfs", flags, "mode=755")]
    hierarchies: dict[str, list[str]] = {}
    for controller, tree in layout.trees.items():
        hierarchies.setdefault(tree, []).append(controller)
    for tree, controllers in sorted(hierarchies.items()):
        found.append(Mount(f"{destination}/{os.path.basename(tree)}", "cgroup", "cgroup", flags,
                           ",".join(sorted(controllers)), read_only=read_only))
    if layout.unified:
        found.append(Mount(f"{destination}/{os.path.basename(layout.unified)}", "cgroup2", "cgroup2", flags,
                           read_only=read_only))
    return found


def to_mount(entry: dict, bundle: str) -> Mount:
    """One config.json mount as the runtime's Mount."""
    destination = entry.get("destination", "")
    if not destination.startswith("/"):
        raise DockyardError(f"config.json: mount destination {destination!r} is not an absolute path",
                            hint="write mounts[].destination as the path inside, starting with /")
    options = entry.get("options") or []
    kind = entry.get("type") or ("bind" if {"bind", "rbind"} & set(options) else "")
    if not kind:
        raise DockyardError(f"config.json: the mount on {destination} has no type",
                            hint="give mounts[].type (tmpfs, proc, bind ...)")
    flags, data = 0, []
    for option in options:
        if option in FLAGS:
            flags = (flags | FLAGS[option][0]) & ~FLAGS[option][1]
        elif option in PROPAGATION or option in ("bind", "rbind", "ro"):
            continue  # read below
        elif "=" in option or kind != "bind":
            data.append(option)
        else:
            raise DockyardError(f"config.json: unknown option {option!r} on the mount at {destination}",
                                hint="see the mount options that `features` lists")
    source = entry.get("source", "")
    if kind == "bind" and not source.startswith("/"):
        source = f"{bundle}/{source}"  # the spec: relative to the bundle
    return Mount(destination=destination, source=source, type="bind" if kind == "bind" else kind,
                 flags=flags | (libc.MS_REC if "rbind" in options else 0),
                 data=",".join(data), read_only="ro" in options)
