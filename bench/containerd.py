"""How long does containerd take to run a container through Dockyard's runtime?

    sudo python3 bench/containerd.py [-n RUNS] [--python PY]

Starts a private containerd (its own root, state and socket in a temp
directory), imports a busybox image made by the engine, then times
`ctr run --rm IMAGE ID true` with runc and with Dockyard's runtime
(tools/dockyard-runtime), interleaved so that a slow moment of the machine
hurts both alike. Prints the median, the range and the ratio to runc, and
the python that ran Dockyard. Byte-code is compiled once first (this
environment may set PYTHONDONTWRITEBYTECODE; a user's machine caches it).
This is a benchmark, not a test: it asserts nothing.
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
sys.path.insert(0, os.path.join(REPO, "tests"))
from tools.busybox_rootfs import make_rootfs  # noqa: E402
from test_containerd import IMAGE, LAUNCHER, write_config  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=15)
    parser.add_argument("--python", default="/usr/bin/python3", help="the python that runs Dockyard")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["DOCKYARD_PYTHON"] = args.python  # the runtime inherits containerd's environment, not ctr's
    subprocess.run([args.python, "-m", "compileall", "-q", os.path.join(REPO, "final")], env=env, check=True)
    scratch = tempfile.mkdtemp(prefix="bench-containerd-")
    namespace = f"bench-{os.getpid()}"
    daemon = subprocess.Popen([sys.executable, "-c", LAUNCHER, "containerd", "--config", write_config(scratch)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        socket = os.path.join(scratch, "containerd.sock")
        while not os.path.exists(socket):
            time.sleep(0.05)
        ctr = ["ctr", "--address", socket, "--namespace", namespace]
        import_image(ctr, scratch, args.python, env)
        runtimes = {"runc": shutil.which("runc"), "dockyard": os.path.join(REPO, "tools", "dockyard-runtime")}
        times: dict[str, list[float]] = {name: [] for name in runtimes}
        for i in range(args.runs + 1):  # the first round warms the caches and is not counted
            for name, binary in runtimes.items():
                began = time.perf_counter()
                result = subprocess.run([*ctr, "run", "--rm", "--runc-binary", binary, IMAGE, f"b{name}{i}", "true"],
                                        env=env, capture_output=True, text=True)
                elapsed = time.perf_counter() - began
                if result.returncode != 0:
                    print(f"{name}: failed: {result.stderr.strip()}", file=sys.stderr)
                    return 1
                if i:
                    times[name].append(elapsed)
        report(times, args.python)
        subprocess.run([*ctr, "images", "rm", IMAGE], capture_output=True)
    finally:
        daemon.terminate()
        daemon.wait()
        subprocess.run(["umount", "-R", "-l", scratch], capture_output=True)
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(f"/run/containerd/runc/{namespace}", ignore_errors=True)
        for base in ("/sys/fs/cgroup", *(f"/sys/fs/cgroup/{c}" for c in os.listdir("/sys/fs/cgroup"))):
            if os.path.isdir(f"{base}/{namespace}"):
                os.rmdir(f"{base}/{namespace}")
    return 0


def import_image(ctr: list[str], scratch: str, python: str, env: dict) -> None:
    engine = [python, "-m", "final", "--root", os.path.join(scratch, "engine")]
    archive = os.path.join(scratch, "busybox.tar")
    rootfs = make_rootfs(os.path.join(scratch, "rootfs"))
    for step in (["import", "-c", 'CMD ["sh"]', rootfs, IMAGE], ["save", "-o", archive, IMAGE]):
        subprocess.run([*engine, *step], cwd=REPO, env=env, check=True, capture_output=True)
    subprocess.run([*ctr, "images", "import", archive], check=True, capture_output=True)


def report(times: dict[str, list[float]], python: str) -> None:
    version = subprocess.run([python, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"ctr run --rm busybox true, {len(times['runc'])} runs each; Dockyard on {python} ({version})")
    baseline = statistics.median(times["runc"])
    print(f"{'runtime':<12}{'median ms':>10}{'min':>8}{'max':>8}{'x runc':>8}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<12}{median * 1000:>10.1f}{min(values) * 1000:>8.1f}{max(values) * 1000:>8.1f}"
              f"{median / baseline:>8.2f}")


if __name__ == "__main__":
    sys.exit(main())
