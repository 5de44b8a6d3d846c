"""How long does `run -d` take to come back, beside `runc run -d`?

    sudo python3 bench/lifecycle.py [-n RUNS] [--python PY]

Times, for the same busybox rootfs, the command that starts a detached
container until it returns (the container then runs on under its monitor,
or under runc's own process tree), and removes the container untimed
between rounds:

    dockyard run -d --rootfs R sleep 100     CLI forks the monitor, waits for "running"
    runc run -d ID (bundle: R + config.json)  where runc is installed
    dockyard run --rm --rootfs R /bin/true   the foreground path, for scale

Contenders are interleaved round by round, so a slow moment of the shared
machine hurts them alike; the table gives the median and the range of the
wall time, the median cpu time (user + system of the command and of the
children it waited for: a detached container's monitor is not among them),
and each row's median over that of the foreground run. This is a benchmark,
not a test: it asserts nothing.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import NamedTuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from tools.busybox_rootfs import make_rootfs  # noqa: E402


class Sample(NamedTuple):
    wall: float
    cpu: float


def timed(argv: list[str], **kwargs) -> Sample:
    """Run `argv` once (it must succeed): its wall time, and the cpu time of it and its waited-for children."""
    start = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, **kwargs)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise subprocess.CalledProcessError(os.waitstatus_to_exitcode(status), argv)
    return Sample(wall, usage.ru_utime + usage.ru_stime)


def runc_bundle(scratch: str, rootfs: str) -> str | None:
    """A bundle for runc: the rootfs and the config.json that `runc spec` writes, detached, no terminal."""
    runc = shutil.which("runc")
    if not runc:
        return None
    bundle = os.path.join(scratch, "bundle")
    os.makedirs(bundle)
    subprocess.run([runc, "spec"], cwd=bundle, check=True)
    with open(os.path.join(bundle, "config.json")) as f:
        config = json.load(f)
    config["root"] = {"path": rootfs, "readonly": True}
    config["process"].update(terminal=False, args=["sleep", "100"])
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(config, f)
    return bundle


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--runs", type=int, default=15)
    parser.add_argument("--python", default="/usr/bin/python3", help="the python that runs the engine")
    args = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="dockyard-bench-lifecycle-")
    rootfs = os.path.join(scratch, "rootfs")
    make_rootfs(rootfs)
    state = os.path.join(scratch, "state")
    engine = [args.python, "-m", "final", "--root", state]
    env = {**os.environ, "PYTHONPATH": REPO}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # byte-code cached, as an installed engine runs
    subprocess.run([args.python, "-m", "compileall", "-q", os.path.join(REPO, "final")], check=True)
    bundle = runc_bundle(scratch, rootfs)
    times: dict[str, list[Sample]] = {}
    try:
        for number in range(args.runs):
            name = f"bench{number}"
            times.setdefault("dockyard run -d", []).append(
                timed([*engine, "run", "-d", "--name", name, "--network", "none", "--rootfs", rootfs, "sleep", "100"],
                      env=env))
            subprocess.run([*engine, "rm", "-f", name], env=env, check=True, stdout=subprocess.DEVNULL)
            if bundle:
                times.setdefault("runc run -d", []).append(
                    timed(["runc", "run", "-d", "--bundle", bundle, name], stdin=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL))
                subprocess.run(["runc", "delete", "-f", name], check=True)
            times.setdefault("dockyard run --rm true (foreground)", []).append(
                timed([*engine, "run", "--rm", "--network", "none", "--rootfs", rootfs, "/bin/true"], env=env))
    finally:
        subprocess.run([*engine, "rm", "-f", *subprocess.run([*engine, "ps", "-aq"], env=env, capture_output=True,
                                                             text=True).stdout.split()],
                       env=env, capture_output=True)
        shutil.rmtree(scratch, ignore_errors=True)
    foreground = statistics.median(sample.wall for sample in times["dockyard run --rm true (foreground)"])
    print(f"{'contender':40} {'median':>9} {'min':>9} {'max':>9} {'cpu':>9} {'ratio':>6}   ({args.runs} runs, {args.python})")
    for label, samples in times.items():
        walls = [sample.wall for sample in samples]
        print(f"{label:40} {statistics.median(walls) * 1000:8.1f}ms {min(walls) * 1000:8.1f}ms "
              f"{max(walls) * 1000:8.1f}ms {statistics.median(s.cpu for s in samples) * 1000:7.1f}ms "
              f"{statistics.median(walls) / foreground:5.2f}x")
    print("ratio: a row's median wall time over that of the foreground `run --rm true`")
    if not bundle:
        print("runc is not installed: its row is missing")
    return 0


if __name__ == "__main__":
    sys.exit(main())
