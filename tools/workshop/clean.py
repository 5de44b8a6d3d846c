"""`clean`: remove what graded code left behind, and only what nobody uses any more.

A student's code can crash between a mount and its unmount, or leave a
cgroup behind. Each test's leak check removes such leftovers at once; this
module sweeps what is left when even that was cut short (a killed grader,
a power cut): the grader's scratch directories that no grading holds, the
cgroups of test runs whose process is gone, and, on request, every mount
under a directory a student names (a chapter 1 rootfs keeps its /proc
mounted on the host if the engine dies).
"""

import fcntl
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time

SCRATCH_PREFIX = "dockyard-workshop-"
CGROUP_ROOT = "/sys/fs/cgroup"
TEST_CGROUP = "dockyard-test-"  # tests/conftest.py names each test's cgroup parent so
LOCKS = "/run/dockyard/cgroups"


def mount_points() -> list[str]:
    """The host's mount points, as /proc/self/mountinfo lists them (octal escapes undone)."""
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4].encode().decode("unicode_escape") for line in f]


def unmount_under(directory: str) -> list[str]:
    """Detach every mount at or below `directory`, the deepest first."""
    directory = os.path.realpath(directory)
    found = [m for m in mount_points() if m == directory or m.startswith(directory.rstrip("/") + "/")]
    for mount in sorted(set(found), key=len, reverse=True):
        subprocess.run(["umount", "-l", mount], capture_output=True)
    return found


def remove_tree(path: str) -> None:
    """rm -rf, also through the mode-000 directories that overlay leaves in work/."""
    def allow(_function: object, failed: str, _exc: object) -> None:
        try:
            os.chmod(os.path.dirname(failed), 0o700)
            if os.path.isdir(failed) and not os.path.islink(failed):
                os.chmod(failed, 0o700)
                shutil.rmtree(failed, ignore_errors=True)
            else:
                os.unlink(failed)
        except OSError:
            pass
    shutil.rmtree(path, onerror=allow)


def sweep_scratch(path: str) -> list[str]:
    """Unmount what is mounted under a scratch directory, then remove it."""
    mounts = unmount_under(path)
    remove_tree(path)
    return mounts


def in_use(path: str) -> bool:
    """Whether a running `check` holds this scratch directory (its lock file)."""
    try:
        fd = os.open(os.path.join(path, "lock"), os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def hold(path: str) -> int:
    """Mark a scratch directory as in use until the returned fd is closed."""
    fd = os.open(os.path.join(path, "lock"), os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def dead_test_cgroups() -> list[str]:
    """Cgroup parents of test runs whose pytest process has gone, in every hierarchy."""
    found = []
    for path in glob.glob(f"{CGROUP_ROOT}/{TEST_CGROUP}*") + glob.glob(f"{CGROUP_ROOT}/*/{TEST_CGROUP}*"):
        pid = os.path.basename(path)[len(TEST_CGROUP):].split("-", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            found.append(path)
    return found


def remove_cgroup(parent: str) -> None:
    """Kill what is in a cgroup tree, then rmdir it from the leaves up."""
    for directory, _, _ in sorted(os.walk(parent), key=lambda entry: -len(entry[0])):
        for _ in range(100):
            try:
                with open(os.path.join(directory, "cgroup.procs")) as f:
                    pids = [int(p) for p in f.read().split()]
            except OSError:
                break
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.01)
        try:
            os.rmdir(directory)
        except OSError:
            pass


def stale_scratch() -> list[str]:
    return [p for p in glob.glob(os.path.join(tempfile.gettempdir(), SCRATCH_PREFIX + "*")) if not in_use(p)]


def leftovers() -> list[str]:
    """What `clean` would remove, in words (for doctor)."""
    return [*stale_scratch(), *dead_test_cgroups(),
            *(p for p in glob.glob(f"{LOCKS}/{TEST_CGROUP}*")
              if (pid := os.path.basename(p)[len(TEST_CGROUP):].split("-", 1)[0]).isdigit()
              and not pid_alive(int(pid)))]


def clean(under: list[str]) -> list[str]:
    """Remove every leftover; return what was removed, one line each."""
    done = []
    for directory in under:
        done += [f"unmounted {m}" for m in unmount_under(directory)]
    for scratch in stale_scratch():
        done += [f"unmounted {m}" for m in sweep_scratch(scratch)] + [f"removed {scratch}"]
    for cgroup in dead_test_cgroups():
        remove_cgroup(cgroup)
        done.append(f"removed cgroup {cgroup}" + ("" if not os.path.exists(cgroup) else " (still busy)"))
    for lock in glob.glob(f"{LOCKS}/{TEST_CGROUP}*"):
        pid = os.path.basename(lock)[len(TEST_CGROUP):].split("-", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            remove_tree(lock) if os.path.isdir(lock) else os.unlink(lock)
            done.append(f"removed {lock}")
    return done
