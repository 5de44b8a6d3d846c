"""What does a container's overlay mount cost?

    sudo python3 bench/overlay.py [-n MOUNTS] [--layers N]

Times mount(2) of an overlay (the lowers, a fresh upper and work dir) and
its umount, N times in a private mount namespace, beside a plain bind mount
of the same rootfs (what chapters 2-3 did instead), and the vfs driver's copy
of the same rootfs. The overlay is mounted the way layers.py mounts it.
This is a benchmark, not a test: it asserts nothing.
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from final import libc, vfs  # noqa: E402
from tools.busybox_rootfs import make_rootfs  # noqa: E402


def overlay_once(scratch: str, lowers: list[str], i: int) -> float:
    """Seconds for one overlay mount (upper and work made fresh, as at create time)."""
    upper, work, merged = (os.path.join(scratch, f"{name}{i}") for name in ("upper", "work", "merged"))
    for path in (upper, work, merged):
        os.mkdir(path)
    options = f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={work},redirect_dir=nofollow"
    start = time.perf_counter()
    libc.mount("overlay", merged, "overlay", 0, options)
    elapsed = time.perf_counter() - start
    libc.umount(merged)
    return elapsed


def bind_once(scratch: str, rootfs: str, i: int) -> float:
    """Seconds for the bind mount of the rootfs onto itself that build_root does anyway."""
    target = os.path.join(scratch, f"bind{i}")
    os.mkdir(target)
    start = time.perf_counter()
    libc.mount(rootfs, target, None, libc.MS_BIND | libc.MS_REC)
    elapsed = time.perf_counter() - start
    libc.umount(target)
    return elapsed


def vfs_once(scratch: str, lowers: list[str], i: int) -> float:
    """Seconds for the vfs driver's copy of the layers."""
    start = time.perf_counter()
    vfs.copy_layers(lowers, os.path.join(scratch, f"copy{i}"))
    return time.perf_counter() - start


def report(label: str, samples: list[float]) -> None:
    ms = sorted(s * 1000 for s in samples)
    print(f"{label:<40} median {statistics.median(ms):8.3f} ms   min {ms[0]:8.3f}   max {ms[-1]:8.3f}   n={len(ms)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=200, help="mounts per row")
    parser.add_argument("--layers", type=int, default=1, help="lower layers to stack (copies of the rootfs)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("error: needs root (mount(2))\nhint: sudo python3 bench/overlay.py")
    libc.unshare(libc.CLONE_NEWNS)
    libc.mount(None, "/", None, libc.MS_REC | libc.MS_PRIVATE)
    with tempfile.TemporaryDirectory(prefix="dockyard-bench-overlay-") as scratch:
        rootfs = make_rootfs(os.path.join(scratch, "rootfs"))
        lowers = [rootfs] + [shutil.copytree(rootfs, os.path.join(scratch, f"layer{i}"), symlinks=True)
                             for i in range(1, args.layers)]
        print(f"kernel {os.uname().release}, {args.layers} lower layer(s) of a busybox rootfs, {scratch}")
        report("bind mount of the rootfs (chapter 2)", [bind_once(scratch, rootfs, i) for i in range(args.n)])
        report(f"overlay mount, {args.layers} lower(s)", [overlay_once(scratch, lowers, i) for i in range(args.n)])
        report("vfs copy of the layers", [vfs_once(scratch, lowers, i) for i in range(min(args.n, 20))])
    return 0


if __name__ == "__main__":
    sys.exit(main())
