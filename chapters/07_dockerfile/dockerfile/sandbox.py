"""Where COPY and ADD write: the layers so far, plus an empty writable layer.

(RUN needs no help: it is a chapter-4 container over the same layers, whose
own upper/ is the step's diff.)

    helper process (forked by the builder, in a private mount namespace)
    ├── mounts overlay: lowerdir = init : layer N : ... : layer 1
    │                   upperdir = upper/  (empty)
    └── COPY/ADD:  writes the files into merged/
    builder: upper/ now holds exactly what the step changed -> a new layer

The overlay is mounted in the helper's own mount namespace, so it vanishes
with the helper, whatever happens to the builder: a build never leaves a
mount behind. The init layer holds the mount points (/proc, /etc/hosts ...)
that the runtime binds over, so they never end up in a layer.
"""

import os
from typing import Callable

from .. import layers, libc, mounts, process
from ..errors import DockyardError


class Sandbox:
    """A scratch directory with init/, upper/, work/ and merged/ over some layers."""

    def __init__(self, tmp: str, lowers: list[str]) -> None:
        self.directory = os.path.join(tmp, f"{os.getpid()}-build-{os.urandom(6).hex()}")
        os.makedirs(self.directory)
        if not lowers:  # FROM scratch: overlay needs a lower layer, so give it an empty one
            lowers = [os.path.join(self.directory, "scratch")]
            os.mkdir(lowers[0], 0o755)
        self.layers = layers.Layers("overlay", lowers, self.directory)
        layers.create(self.layers, userns=False)

    @property
    def upper(self) -> str:
        return self.layers.path("upper")

    def run(self, work: Callable[[str], int]) -> int:
        """Call work(merged root) in a helper with the overlay mounted; return its status."""
        error_read, error_write = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:
            os.close(error_read)
            helper_main(self.layers, work, error_write)
        os.close(error_write)
        try:
            process.raise_child_error(error_read)
        finally:
            os.close(error_read)
            _, status = os.waitpid(pid, 0)
        return process.exit_code_of(status)

    def remove(self) -> None:
        """Delete the scratch directory (its upper/ too, unless it was taken)."""
        layers.remove_tree(self.directory)


def helper_main(stack: layers.Layers, work: Callable[[str], int], error_fd: int) -> None:
    """Mount the overlay privately and do the step's work. Call in the forked helper."""
    try:
        if hasattr(libc, "prctl"):
            libc.prctl(libc.PR_SET_PDEATHSIG, 9)  # the helper dies with the builder
        libc.unshare(libc.CLONE_NEWNS)
        mounts.make_mounts_private()
        merged = layers.mount(stack, userns=False)
        code = work(merged)
        os.close(error_fd)
        os._exit(code)
    except BaseException as err:  # nothing may escape a forked child
        if os.environ.get("DOCKYARD_DEBUG"):
            import traceback
            traceback.print_exc()
        process.report_to_parent(error_fd, err)


def mount_read_only(lowers: list[str], target: str) -> str:
    """Show a stage's layers, top first, read-only at `target`; return the root to read."""
    if not lowers:
        os.makedirs(target, exist_ok=True)
        return target
    if len(lowers) == 1:
        return lowers[0]  # a single layer is already the whole tree
    os.makedirs(target, exist_ok=True)
    try:
        libc.mount("overlay", target, "overlay", libc.MS_RDONLY, "lowerdir=" + ":".join(lowers))
    except OSError as err:
        raise DockyardError(f"cannot mount the layers of another stage: {err.strerror}",
                            hint="overlayfs is needed for COPY --from") from err
    return target


def take_upper(upper: str, target: str) -> None:
    """Move a step's upper/ to be the unpacked layer at `target` (unless one is there)."""
    if not os.path.isdir(target):
        os.rename(upper, target)  # both live under --root: one filesystem
