# chapter: 02
"""Chapter 2: namespaces, or giving the container a world of its own.

A chroot changes only where "/" is. A namespace gives a process its own copy
of one kind of kernel resource, and clone(2) makes a child in as many new
namespaces as we ask for, all at once:

    mount    its own mount table: what it mounts, the host never sees
    UTS      its own hostname
    IPC      its own System V IPC objects and POSIX message queues
    PID      its own process numbers; the command becomes PID 1
    network  its own interfaces: only `lo`, until a bridge comes along
    user     its own uids: root inside can be an ordinary user outside

The child then swaps its root mount for the rootfs with pivot_root(2) and
detaches the old one (see mounts.py), so no path leads back to the host.

New here:  clone(2) flags, pivot_root(2), sethostname(2), uid_map/gid_map
Try it:    sudo python3 -m chapters.02_namespaces run --rootfs ROOTFS ps
Not yet:   a container can still use all the memory and CPU; see chapter 3.
"""

import fcntl
import os
import re
import socket
import struct
from typing import Callable

from . import config, libc
from .errors import DockyardError

HOSTNAME = re.compile(r"^(?=.{1,63}$)[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$")


# --8<-- [start:clone_flags]
CLONE_FLAGS = {"mount": libc.CLONE_NEWNS, "uts": libc.CLONE_NEWUTS, "ipc": libc.CLONE_NEWIPC,
               "pid": libc.CLONE_NEWPID, "network": libc.CLONE_NEWNET, "user": libc.CLONE_NEWUSER}


def clone_flags(kinds: list[str]) -> int:
    """The clone(2) flags that make a new namespace of each kind."""
    flags = 0
    for kind in kinds:
        flags |= CLONE_FLAGS[kind]
    return flags


def kinds_for(network: str, userns: bool) -> list[str]:
    """The namespaces a container gets: all of them, less those shared on request."""
    # >>> exercise 2.1: the namespaces a container gets, by kind (clone_flags turns them into clone(2) flags)
    # hint: start from "mount", "uts", "ipc" and "pid"; add "network" unless network is "host"
    # hint: (then the container shares the host's interfaces), and "user" only when userns is
    # hint: asked for (root without --userns stays host root).
    # test: test_namespaces.py::test_the_container_has_its_own_mount_uts_ipc_pid_and_network_namespaces
    # test: test_namespaces.py::test_network_host_shares_the_hosts_interfaces
    # test: test_namespaces.py::test_the_command_is_pid_1_and_sees_only_the_containers_processes
    # stops: every run
    kinds = ["mount", "uts", "ipc", "pid"]
    if network != "host":
        kinds.append("network")
    if userns:
        kinds.append("user")
    return kinds
    # <<< exercise 2.1
# --8<-- [end:clone_flags]


def check_hostname(name: str) -> str:
    """Refuse a hostname that sethostname(2) or a resolver would choke on."""
    if not HOSTNAME.match(name):
        raise DockyardError(f"invalid hostname {name!r}",
                            hint="use letters, digits, '-' and '.', at most 63 characters")
    return name


# --- user namespaces ----------------------------------------------------------
# A new user namespace starts with no uid mapped. The parent, still outside,
# writes the child's maps: "inside outside count" per line.

# --8<-- [start:id_maps]
def id_maps() -> tuple[str, str]:
    """The uid and gid maps for a container: ours alone when rootless, a range for root."""
    # >>> exercise 2.3: the user namespace's id maps
    # hint: a map line is "INSIDE OUTSIDE COUNT\n". An ordinary user may map only itself: uid 0 inside
    # hint: is its own euid (and gid 0 its egid), count 1. Root maps 0 to the start of
    # hint: config.USERNS_RANGE (start, count), for count ids. Return (uid_map, gid_map).
    # test: test_namespaces.py::test_root_with_userns_maps_root_inside_to_the_configured_range
    # test: test_namespaces.py::test_userns_gives_the_container_its_own_user_namespace
    # stops: every run in a user namespace (--userns, and every rootless run)
    uid, gid = os.geteuid(), os.getegid()
    if uid != 0:
        # An ordinary user may map exactly one id: its own, which becomes root inside.
        return f"0 {uid} 1\n", f"0 {gid} 1\n"
    start, count = config.USERNS_RANGE
    return f"0 {start} {count}\n", f"0 {start} {count}\n"
    # <<< exercise 2.3


def write_id_maps(pid: int, uid_map: str, gid_map: str) -> None:
    """Map the child's ids; call in the parent after clone and before the child goes on."""
    try:
        if os.geteuid() != 0:
            # Without CAP_SETGID outside, setgroups(2) must be disabled before gid_map is written.
            write_proc(pid, "setgroups", "deny")
        write_proc(pid, "uid_map", uid_map)
        write_proc(pid, "gid_map", gid_map)
    except PermissionError as err:
        raise DockyardError("cannot map user ids into the container's user namespace",
                            hint="check that user namespaces are enabled: sysctl user.max_user_namespaces") from err
# --8<-- [end:id_maps]


def write_proc(pid: int, name: str, text: str) -> None:
    with open(f"/proc/{pid}/{name}", "w") as f:
        f.write(text)


def become_root() -> None:
    """Take uid and gid 0 of our new user namespace. Call in the child, once the maps exist."""
    # Writing the maps changes no one's credentials: a child cloned by host
    # root is still host uid 0, which a range like 100000.. leaves unmapped.
    try:
        os.setgroups([])  # host groups would show up as "nogroup" inside
    except PermissionError:
        pass  # rootless: setgroups is denied (see write_id_maps), and not needed
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)


def as_root_inside(work: Callable[[], None]) -> None:
    """Run `work` as uid 0 of our user namespace, in a child if we are not that already."""
    if os.geteuid() == 0:
        return work()
    # Root with --userns stays host root (unmapped inside, shown as 65534) until
    # become_root, so that it can still reach the rootfs through the host's
    # private directories. But a filesystem mounted in the new namespace refuses
    # files from an unmapped owner: a short-lived child makes them.
    pid = os.fork()
    if pid == 0:
        try:
            become_root()
            work()
            os._exit(0)
        except BaseException:
            os._exit(1)
    if os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0:
        raise OSError("cannot create files as root of the user namespace")


def check_userns_allowed() -> None:
    """Refuse --userns early, with a hint, where the kernel forbids user namespaces."""
    try:
        with open("/proc/sys/user/max_user_namespaces") as f:
            allowed = int(f.read())
    except OSError:
        allowed = 1
    if allowed == 0:
        raise DockyardError("user namespaces are disabled on this machine",
                            hint="enable them: sudo sysctl -w user.max_user_namespaces=15000")
    if os.geteuid() != 0 and read_sysctl(APPARMOR_USERNS) == "1" and not userns_is_capable():
        raise DockyardError("AppArmor leaves this user's user namespaces without capabilities "
                            "(kernel.apparmor_restrict_unprivileged_userns=1, as on Ubuntu 24.04)",
                            hint="allow them: sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 (the "
                                 "Vagrant VM does), or an AppArmor profile with 'userns,' for python3; or run as root")


# Ubuntu 24.04 lets anyone create a user namespace, but unless AppArmor allows the program
# ('userns,' in its profile), root inside gets no capabilities: the first mount fails.
APPARMOR_USERNS = "/proc/sys/kernel/apparmor_restrict_unprivileged_userns"


def read_sysctl(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def userns_is_capable() -> bool:
    """Whether a user namespace of ours may mount: try it in a throwaway child."""
    pid = os.fork()
    if pid == 0:
        try:
            uid, gid = os.getuid(), os.getgid()
            libc.unshare(libc.CLONE_NEWUSER | libc.CLONE_NEWNS)
            for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
                with open(f"/proc/self/{name}", "w") as f:
                    f.write(text)
            libc.mount(None, "/", None, libc.MS_REC | libc.MS_PRIVATE)
            os._exit(0)
        except BaseException:
            os._exit(1)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0


# --- inside the new namespaces ------------------------------------------------

def join_all(paths: dict[str, str]) -> None:
    """setns(2) into each namespace named by a path (/proc/PID/ns/net ...). Call in the child."""
    for kind, path in paths.items():
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                libc.setns(fd, CLONE_FLAGS[kind])
            finally:
                os.close(fd)
        except OSError as err:
            raise DockyardError(f"cannot join the {kind} namespace {path}: {err.strerror}",
                                hint="is the process or namespace it names still there?") from err


def set_hostname(name: str) -> None:
    """Name the container's UTS namespace; the host's hostname is untouched."""
    libc.sethostname(name)


SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1


def bring_up_loopback() -> None:
    """A new network namespace has only `lo`, and it is down: bring it up."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))
