"""What does the seccomp filter cost? Per system call, and at start.

    sudo python3 bench/seccomp.py [-n RUNS] [--calls N]

1. Per syscall: a static C loop of N getpid(2) calls runs inside a container
   with the default profile and with `--security-opt seccomp=unconfined`;
   the difference of the two loops' times, over N, is the filter's cost
   per call (the loop times itself, so engine start is left out).
2. At start: the engine's own work for the filter, compiling the default
   profile for this machine (median of RUNS, in the engine's process), and
   `run --rootfs R /bin/true` with and without the filter, interleaved.

A benchmark, not a test: it asserts nothing.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from tools.busybox_rootfs import make_rootfs  # noqa: E402

LOOP_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
int main(int argc, char **argv) {
    long n = atol(argv[1]);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++) syscall(SYS_getpid);
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%.1f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n);
    return 0;
}
"""


def engine(root: str, *args: str) -> list[str]:
    return ["/usr/bin/python3", "-m", "final", "--root", root, *args]


def ns_per_call(root: str, rootfs: str, calls: int, *flags: str) -> float:
    out = subprocess.run(engine(root, "run", "--rm", *flags, "--rootfs", rootfs, "/bin/loop", str(calls)),
                         cwd=REPO, capture_output=True, text=True, check=True).stdout
    return float(out)


def start_ms(root: str, rootfs: str, *flags: str) -> float:
    began = time.perf_counter()
    subprocess.run(engine(root, "run", "--rm", *flags, "--rootfs", rootfs, "/bin/true"), cwd=REPO, check=True)
    return (time.perf_counter() - began) * 1000


def compile_ms(runs: int) -> float:
    from final import capabilities, seccomp
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        seccomp.compile_profile(seccomp.default_profile(), list(capabilities.DEFAULT))
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=10)
    parser.add_argument("--calls", type=int, default=2_000_000)
    args = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="dockyard-bench-seccomp-")
    try:
        rootfs, root = make_rootfs(os.path.join(scratch, "rootfs")), os.path.join(scratch, "root")
        source = os.path.join(scratch, "loop.c")
        with open(source, "w") as f:
            f.write(LOOP_C)
        subprocess.run(["gcc", "-static", "-O2", "-o", os.path.join(rootfs, "bin", "loop"), source], check=True)
        on, off, start_on, start_off = [], [], [], []
        for _ in range(args.runs):  # interleaved: a slow moment hurts both alike
            on.append(ns_per_call(root, rootfs, args.calls))
            off.append(ns_per_call(root, rootfs, args.calls, "--security-opt", "seccomp=unconfined"))
            start_on.append(start_ms(root, rootfs))
            start_off.append(start_ms(root, rootfs, "--security-opt", "seccomp=unconfined"))
        m = statistics.median
        print(f"getpid, filter on:        {m(on):7.1f} ns/call  (median of {args.runs}, {args.calls} calls each)")
        print(f"getpid, unconfined:       {m(off):7.1f} ns/call")
        print(f"the filter's cost:        {m(on) - m(off):7.1f} ns/call")
        print(f"compiling the profile:    {compile_ms(max(args.runs, 50)):7.2f} ms  (in the engine, per start)")
        print(f"run /bin/true, filter on: {m(start_on):7.1f} ms   unconfined: {m(start_off):7.1f} ms   "
              f"difference: {m(start_on) - m(start_off):+.1f} ms")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
