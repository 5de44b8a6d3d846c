"""Chapter 4: union layers, or sharing a rootfs without sharing its changes.

Until now every container wrote straight into its rootfs, so one container's
`rm -rf /etc` was every later container's problem. overlayfs stacks
directories: read-only *lower* layers below, one writable *upper* layer on
top, and shows their union at a *merged* mount point:

    merged/    what the container sees: the union, the top-most entry wins
    ┌──────────────────────────────────────────────────────┐
    │ upper/   this container's own changes (starts empty) │ read-write
    ├──────────────────────────────────────────────────────┤
    │ init/    mount points for /etc/hosts, /proc, ...     │ read-only
    │ lower    the rootfs (or an image's layers)           │ read-only
    └──────────────────────────────────────────────────────┘
    work/      overlay's scratch space, on the upper's filesystem

Writing to a lower file first *copies it up* into upper/; deleting one
leaves a *whiteout* (a 0/0 character device) in upper/ that hides it; a
directory deleted and made again is marked *opaque* (an xattr), hiding all
below it. The lower layers never change, so any number of containers share
them, and the upper layer holds exactly what one container changed.

The child mounts the overlay inside its own mount namespace, so it vanishes
with the container: the host's mount table never sees it. Where overlay
cannot be used, the `vfs` driver (vfs.py) copies the layers instead.

New here:  overlayfs (lowerdir, upperdir, workdir), whiteouts, opaque dirs,
           idmapped mounts (open_tree, mount_setattr, move_mount) for root with --userns
Try it:    sudo python3 -m chapters.04_layers run --rootfs ROOTFS sh -c 'rm -rf /bin/ls'
           sudo python3 -m chapters.04_layers ps -a; ... diff CONTAINER
Not yet:   a rootfs is one directory you made; images arrive in chapter 5.
"""

import contextlib
import os
import socket
import stat
import sys
from dataclasses import dataclass
from typing import Iterator

from . import config, libc, namespaces, vfs
from .errors import DockyardError
from .spec import Root

DRIVERS = ("overlay", "vfs")
# Mount points that the engine binds over at start: they live in the init
# layer, below the container's own, so they never show up in `diff`.
INIT_DIRS = ("proc", "sys", "dev", "etc")
INIT_FILES = ("etc/hostname", "etc/hosts", "etc/resolv.conf")


@dataclass
class Layers:
    """A container's filesystem: read-only layers below, its own writable layer on top."""
    driver: str          # "overlay" or "vfs"
    lowers: list[str]    # read-only layer directories, the top-most first
    directory: str       # the container's directory, which holds the rest

    def path(self, name: str) -> str:
        return os.path.join(self.directory, name)

    def stack(self) -> list[str]:
        """Every read-only layer, the top-most first: the init layer, then the lowers."""
        return [self.path("init"), *self.lowers]

    def top(self) -> str:
        """Where the container's own version of its files lives: upper/, or the vfs copy."""
        return self.path("upper" if self.driver == "overlay" else "rootfs")


@dataclass(frozen=True)
class Change:
    """One line of `diff`: A(dded), C(hanged) or D(eleted), and the path inside."""
    kind: str
    path: str


def check_driver(driver: str) -> str:
    """Refuse a storage driver we do not have."""
    if driver not in DRIVERS:
        raise DockyardError(f"unknown storage driver {driver!r}",
                            hint=f"use one of: {', '.join(DRIVERS)}")
    return driver


def owner_inside(userns: bool) -> tuple[int, int]:
    """The host uid and gid that are root inside the container."""
    if os.geteuid() != 0:
        return os.geteuid(), os.getegid()
    return (config.USERNS_RANGE[0],) * 2 if userns else (0, 0)


def userns_shift(userns: bool) -> "vfs.Shift":
    """How far owners on disk are from those inside: the range for root with --userns, else none."""
    return config.USERNS_RANGE if userns and os.geteuid() == 0 else None


def vfs_shift(driver: str, userns: bool) -> "vfs.Shift":
    """How the vfs copy shifts owners: by the range for root with --userns (see vfs.py), else not."""
    return userns_shift(userns) if driver == "vfs" else None


# --8<-- [start:create]
def create(layers: Layers, userns: bool) -> None:
    """Make the container's writable layer; call on the host, before the first start."""
    make_init_layer(layers.path("init"), layers.lowers[0], userns)
    if layers.driver == "vfs":
        vfs.copy_layers(layers.stack(), layers.top(), vfs_shift(layers.driver, userns))
        return
    for name in ("upper", "work", "merged"):
        os.mkdir(layers.path(name), 0o755)
    # The merged "/" takes its mode and owner from upper/: make them the rootfs's.
    copy_root_attributes(layers.lowers[0], layers.path("upper"), userns)
    if userns or os.geteuid() != 0:
        os.chown(layers.path("work"), *owner_inside(userns))


def root_of(layers: Layers, userns: bool) -> Root:
    """The container's root as the runtime takes it: an overlay of the stack, or the vfs copy."""
    if layers.driver == "vfs":
        return Root(layers.top())
    idmapped = layers.lowers if needs_idmapped_lowers(layers.driver, userns) else []
    return Root(layers.path("merged"), lowers=layers.stack(), upper=layers.path("upper"),
                work=layers.path("work"), idmapped=idmapped)


def mount(layers: Layers, userns: bool) -> str:
    """Mount the container's rootfs and return its path; call in the child, mounts private."""
    return mount_root(root_of(layers, userns), userns, None)


def mount_root(root: Root, userns: bool, idmapped: "Channel | None") -> str:
    """Mount the overlay of `root`, if it is one, at its path; call in the child, mounts private."""
    if not root.lowers:
        return root.path  # a plain directory: build_root binds it onto itself
    if idmapped:
        attach_idmapped_lowers(idmapped, root.idmapped)
    # Open every dir while we can still reach it through the host's private dirs
    # (root with --userns is host root until pivot), and name them by fd: the
    # options stay short however many layers there are, and show no host path.
    fds = [os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
           for path in (*root.lowers, root.upper, root.work, root.path)]
    *lowers, upper, work, merged = (f"/proc/self/fd/{fd}" for fd in fds)
    options = f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={work}"
    # A renamed directory is copied, not redirected, so upper/ reads as a diff;
    # in a user namespace overlay keeps its xattrs under user.* (trusted.* needs the host's root).
    options += ",redirect_dir=nofollow" + (",userxattr" if userns else "")
    try:
        # As root of the user namespace: the files overlay makes in work/ and upper/ need a mapped owner.
        namespaces.as_root_inside(lambda: libc.mount("overlay", merged, "overlay", 0, options))
    except OSError as err:
        raise DockyardError(f"cannot mount the overlay filesystem: {err.strerror or err}",
                            hint="use the copying driver: --storage-driver vfs (before the command)") from err
    finally:
        for fd in fds:
            os.close(fd)
    return root.path
# --8<-- [end:create]


def make_init_layer(init: str, rootfs: str, userns: bool) -> None:
    """The init layer: empty mount points for what the engine binds over at start."""
    for name in INIT_DIRS:
        os.makedirs(os.path.join(init, name))
    for name in INIT_FILES:
        with open(os.path.join(init, name), "w"):
            pass
        os.chown(os.path.join(init, name), *owner_inside(userns))
    for name in ("", *INIT_DIRS):  # last, as making their entries changed their times
        copy_root_attributes(os.path.join(rootfs, name), os.path.join(init, name), userns)


def copy_root_attributes(source: str, target: str, userns: bool) -> None:
    """Give `target` the mode, owner and times of `source` (if any): a layer's dir must not shadow them."""
    try:
        st = os.stat(source)
    except OSError:
        return
    os.chmod(target, stat.S_IMODE(st.st_mode))
    uid, gid = owner_inside(userns) if userns or os.geteuid() != 0 else (st.st_uid, st.st_gid)
    os.chown(target, uid, gid)
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))


# --- idmapped lowers: root with --userns ---------------------------------------------
# The lower layers belong to host ids, mostly root, which the range 100000.. does
# not map: inside, their files belong to no one, and overlay refuses to copy one
# up (the copy's owner could not be mapped). An idmapped mount shows a directory
# through a user namespace's map: on it, a file of host root belongs to root
# inside, and a copy-up lands in upper/ as host uid 100000. Only host root may
# make one, once the child's maps are written: the engine makes them between
# clone and "go" and hands them over a unix socket (SCM_RIGHTS). The child
# attaches them in its own mount namespace, as overlay takes no layer from
# another; its init layer is the range's already, and stays as it is.

Channel = tuple[socket.socket, socket.socket]  # a socketpair: the engine's end, the child's end


def driver_for(driver: str, lowers: list[str], userns: bool) -> str:
    """The driver to use: overlay, unless its lowers need idmapping that their filesystem cannot do.

    Then the container gets a copy (vfs), which owns what chapter 2's --userns owned: files
    of host root are nobody's inside, and only the container's own files are writable.
    """
    if not needs_idmapped_lowers(driver, userns):
        return driver
    for lower in lowers:
        if not can_idmap(lower):
            print(f"warning: {lower} is on {filesystem_of(lower)}, which Linux {os.uname().release} cannot "
                  "idmap: --userns copies the layers (--storage-driver vfs)", file=sys.stderr)
            return "vfs"
    return driver


def can_idmap(path: str) -> bool:
    """Whether the kernel can idmap `path`'s mount: tried with a throwaway child's user namespace."""
    with user_namespace(f"0 {config.USERNS_RANGE[0]} 1") as userns:
        if userns is None:
            return True  # no user namespace at all: the run itself will say so
        try:
            tree, = idmapped_trees([path], userns)
        except OSError:
            return False
        os.close(tree)
        return True


@contextlib.contextmanager
def user_namespace(id_map: str) -> Iterator[int | None]:
    """An fd of a new user namespace whose uid and gid maps are `id_map`, owned by a throwaway child
    that lives until the `with` ends; None if the kernel gives us no user namespace."""
    ready, done = os.pipe(), os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a user namespace of its own, kept until the parent is done
        try:
            os.close(done[1])  # a parent killed midway then means EOF below, not a wait for ever
            libc.unshare(libc.CLONE_NEWUSER)
            os.write(ready[1], b"x")
            os.read(done[0], 1)
        finally:
            os._exit(0)
    os.close(ready[1])
    try:
        if os.read(ready[0], 1) != b"x":
            yield None
            return
        for name in ("uid_map", "gid_map"):
            with open(f"/proc/{pid}/{name}", "w") as f:
                f.write(id_map)
        userns = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
        try:
            yield userns
        finally:
            os.close(userns)
    finally:
        os.write(done[1], b"x")
        os.waitpid(pid, 0)
        for fd in (ready[0], done[0], done[1]):
            os.close(fd)


def idmapped_trees(paths: list[str], userns: int) -> list[int]:
    """Detached copies of the mounts at `paths`, seen through `userns`'s map (closed again if one fails)."""
    fds: list[int] = []
    try:
        for path in paths:
            fds.append(libc.open_tree(path, libc.OPEN_TREE_CLONE | libc.OPEN_TREE_CLOEXEC))
            # Private: the copy must not share mount events with the host's mount it came from.
            libc.mount_setattr(fds[-1], libc.MOUNT_ATTR_IDMAP, libc.MS_PRIVATE, userns)
        return fds
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise


def idmap_channel() -> Channel:
    """A socketpair to hand idmapped layers from the engine to the child."""
    return socket.socketpair()


def needs_idmapped_lowers(driver: str, userns: bool) -> bool:
    """Whether the engine must hand the child idmapped lowers: root with --userns, on overlay."""
    return driver == "overlay" and userns and os.geteuid() == 0


def send_idmapped_lowers(channel: Channel, pid: int, lowers: list[str]) -> None:
    """Clone each lower, show it through child `pid`'s user namespace, and send them to the child."""
    userns = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    fds: list[int] = []
    lower = lowers[0] if lowers else ""
    try:
        for lower in lowers:
            fds.append(libc.open_tree(lower, libc.OPEN_TREE_CLONE | libc.OPEN_TREE_CLOEXEC))
            # Private: the copy must not share mount events with the host's mount it came from.
            libc.mount_setattr(fds[-1], libc.MOUNT_ATTR_IDMAP, libc.MS_PRIVATE, userns)
        socket.send_fds(channel[0], [b"lowers"], fds)
    except OSError as err:
        raise DockyardError(f"cannot show the layers through the container's user namespace: {err.strerror or err}"
                            f" ({lower} is on {filesystem_of(lower)}, Linux {os.uname().release})",
                            hint="idmapped mounts work on ext4, xfs and vfat (Linux 5.12), btrfs (5.15) and tmpfs "
                                 "(6.3), never on ramfs: put --root there, or use --storage-driver vfs") from err
    finally:
        for fd in (userns, *fds):
            os.close(fd)
        for end in channel:
            end.close()


def filesystem_of(path: str) -> str:
    """The type of the filesystem that holds `path` ("ext4", "tmpfs" ...), from /proc/self/mountinfo."""
    real, best, fstype = os.path.realpath(path), "", "an unknown filesystem"
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            point = fields[4].replace("\\040", " ")
            inside = real == point or real.startswith(point.rstrip("/") + "/")
            if inside and len(point) >= len(best):
                best, fstype = point, fields[fields.index("-") + 1]
    return fstype


def attach_idmapped_lowers(channel: Channel, lowers: list[str]) -> None:
    """Mount each idmapped lower from the engine over its own path; call in the child, mounts private."""
    _, fds, _, _ = socket.recv_fds(channel[1], len(b"lowers"), len(lowers))
    for fd, lower in zip(fds, lowers):
        libc.move_mount(fd, lower)
        os.close(fd)


# --- diff: what the container changed ---------------------------------------------

# --8<-- [start:changes]
def changes(layers: Layers, userns: bool = False) -> list[Change]:
    """What the container added, changed and deleted, sorted by path."""
    if layers.driver == "vfs":
        found = vfs.changes(layers.stack(), layers.top(), vfs_shift(layers.driver, userns))
        return [Change(kind, path) for kind, path in found]
    return sorted(upper_changes(layers.top(), layers.stack()), key=lambda c: c.path)


def upper_changes(upper: str, lowers: list[str], inside: str = "/") -> Iterator[Change]:
    """Read upper/ as a diff: whiteouts are deletions, the rest is added or changed."""
    for entry in os.scandir(os.path.join(upper, inside.lstrip("/"))):
        path = os.path.join(inside, entry.name)
        in_lower = vfs.lookup(lowers, path) is not None
        if is_whiteout(entry):
            yield Change("D", path)
            continue
        yield Change("C" if in_lower else "A", path)
        if entry.is_dir(follow_symlinks=False):
            if in_lower and is_opaque(entry.path):
                # An opaque dir hides everything below it: what it lacks is deleted.
                for name in set(vfs.union_names(lowers, path)) - set(os.listdir(entry.path)):
                    yield Change("D", os.path.join(path, name))
            yield from upper_changes(upper, lowers if in_lower else [], path)
# --8<-- [end:changes]


def is_whiteout(entry: os.DirEntry) -> bool:
    """overlay's whiteout: a character device with device number 0/0."""
    st = entry.stat(follow_symlinks=False)
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque(path: str) -> bool:
    """Whether overlay marked this upper dir opaque (trusted.* as root, user.* in a userns)."""
    return vfs.has_opaque_xattr(path)


# --- removing a container's layer -----------------------------------------------------

def remove_tree(path: str) -> None:
    """rm -rf, also through the mode-000 dirs that overlay leaves in work/, and however deep the tree.

    A container decides how deep its layer goes: a few thousand nested
    directories would overflow a recursive walk (shutil.rmtree's, and so
    `rm` and `ps` after it) and the longest path. So the walk is flat: each
    round empties the directories just under `path` of their files and
    moves their subdirectories up beside them, to be emptied in the next
    round; no round holds more than two directories open."""
    if os.path.islink(path) or os.path.isfile(path):
        os.unlink(path)  # a file, or a link: never followed
        return
    try:
        top = open_directory(path)
    except FileNotFoundError:
        return
    try:
        while names := os.listdir(top):
            for name in names:
                empty_and_remove(top, name)
    finally:
        os.close(top)
    os.rmdir(path)


def empty_and_remove(top: int, name: str) -> None:
    """Remove top/NAME: a file at once; a directory once its files are gone and its subdirectories
    have moved up into top (each under a new, unique name), for the next round."""
    if not stat.S_ISDIR(os.lstat(name, dir_fd=top).st_mode):
        os.unlink(name, dir_fd=top)
        return
    directory = open_directory(name, top)
    try:
        for child in os.listdir(directory):
            if stat.S_ISDIR(os.lstat(child, dir_fd=directory).st_mode):
                make_ours(child, directory)  # moving a directory rewrites its "..": it needs our write
                os.rename(child, f".removing-{os.urandom(8).hex()}", src_dir_fd=directory, dst_dir_fd=top)
            else:
                os.unlink(child, dir_fd=directory)
    finally:
        os.close(directory)
    os.rmdir(name, dir_fd=top)


def open_directory(name: str, parent: int | None = None) -> int:
    """A directory's fd, never through a symlink; made ours (0700) first if its mode shuts us out."""
    make_ours(name, parent)  # write and search, to empty it (overlay's work/ dirs are mode 000)
    return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)


def make_ours(name: str, parent: int | None) -> None:
    """chmod 0700 a directory we are about to empty or move; root needs no permission, so no matter if
    it is not ours to change. (Called on directories only: lstat said so, so no link is followed.)"""
    try:
        os.chmod(name, 0o700, dir_fd=parent)
    except PermissionError:
        pass
