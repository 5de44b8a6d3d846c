"""Every benchmark in one go, with its peers in the same run, and one table of ratios.

    sudo python3 bench/all.py [--quick] [--only start,unpack,...] [--python /usr/bin/python3]

Parts, each bounded in time (--part-timeout), each beside its peers:

    start      run --rm --rootfs R true and run --rm IMAGE true   vs runc run, crun run
    unpack     a 100 MB layer of large files, ~9,000 small files  vs GNU tar, tarfile (+ data filter)
    lifecycle  run -d, stop, rm (bench/lifecycle.py)              vs its peers there
    exec       exec ID true (bench/exec.py)                       vs runc exec, crun exec, nsenter
    registry   pull and push of a 200 MiB, 4-layer image          vs skopeo, curl + sha256sum (the floor)
    build      cold, cached and one-file-changed builds           vs buildah bud, BuildKit (dockerd of its own)
    containerd ctr run through tools/dockyard-runtime             (bench/containerd.py)

A part whose script or peer is missing prints "not installed" (or "not there
yet") instead of failing. The engine runs as a user's would: byte-code cached
(PYTHONDONTWRITEBYTECODE is dropped and the code compiled once first), with
the python named in the output. Medians throughout. A benchmark, not a test:
it asserts nothing. On a loaded machine the wall times wander; the ratios,
taken within one run with the contenders interleaved, and the cpu times hold
better.
"""

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
sys.path.insert(0, BENCH)
import build  # noqa: E402
import registry  # noqa: E402
import start_latency  # noqa: E402
import unpack  # noqa: E402

PARTS = ("start", "unpack", "lifecycle", "exec", "registry", "build", "containerd")
SCRIPT_PARTS = {  # part: (script, arguments full, arguments --quick, the peers it needs)
    "lifecycle": ("lifecycle.py", ["-n", "10"], ["-n", "3"], []),
    "exec": ("exec.py", ["-n", "20"], ["-n", "5"], []),
    "containerd": ("containerd.py", [], [], ["ctr", "containerd"]),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer runs and a smaller image (a smoke run)")
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts (default all: {PARTS})")
    parser.add_argument("--python", default="/usr/bin/python3", help="python that runs the engine")
    parser.add_argument("--part-timeout", type=int, default=600, help="seconds each script part may take")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("error: containers need root\nhint: sudo python3 bench/all.py")
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # for this process's children too
    subprocess.run([args.python, "-m", "compileall", "-q", os.path.join(REPO, "final")], check=True,
                   stdout=subprocess.DEVNULL)
    print(f"engine python: {start_latency.describe(args.python)}, byte-code cached")
    print(f"machine: Linux {platform.release()}, {platform.machine()}, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.1f}")
    summary: list[tuple[str, str, str]] = []  # (what, ratio, against)
    for part in args.only.split(","):
        print(f"\n=== {part} " + "=" * (60 - len(part)), flush=True)
        started = time.monotonic()
        try:
            summary += run_part(part, args)
        except (Exception, SystemExit) as err:  # one part's failure must not lose the others' figures
            print(f"{part}: failed: {err}")
            summary.append((part, "failed", str(err).splitlines()[0][:70] if str(err) else ""))
        print(f"({part}: {time.monotonic() - started:.0f} s)")
    print("\n=== summary " + "=" * 53)
    width = max((len(what) for what, _, _ in summary), default=10)
    for what, ratio, against in summary:
        print(f"{what:{width}}  {ratio:>14}  {against}")
    print(f"python: {args.python}; ratios are medians over medians taken in the same run; "
          f"load at the end {os.getloadavg()[0]:.1f}")
    return 0


def run_part(part: str, args: argparse.Namespace) -> list[tuple[str, str, str]]:
    """Run one part, print its own table, and return its summary rows."""
    parts = {"start": start_part, "unpack": unpack_part, "registry": registry_part, "build": build_part}
    if part in parts:
        return parts[part](args)
    if part in SCRIPT_PARTS:
        return [script_part(part, args)]
    print(f"unknown part {part!r}; parts: {', '.join(PARTS)}")
    return []


def start_part(args: argparse.Namespace) -> list[tuple[str, str, str]]:
    runs, warmup = (5, 1) if args.quick else (20, 3)
    times, notes = start_latency.run(runs, warmup, args.python, ["final"])
    baseline = next((label for label in times if label.startswith("runc")), None)
    print(start_latency.table(times, baseline or next(iter(times))))
    for note in notes:
        print(f"note: {note}")
    if baseline is None:
        return [("start", "runc not installed", "")]

    def median(label: str, field: str) -> float:
        return statistics.median(getattr(sample, field) for sample in times[label])
    rows = []
    for label in ("dockyard final: run --rm (overlay)", "dockyard final: run --rm IMAGE"):
        if label in times:
            what = label.replace("dockyard final: ", "start: ")
            rows.append((what + " (wall)", f"{median(label, 'wall') / median(baseline, 'wall'):.2f}x", baseline))
            rows.append((what + " (cpu)", f"{median(label, 'cpu') / median(baseline, 'cpu'):.2f}x", baseline))
    return rows


def unpack_part(args: argparse.Namespace) -> list[tuple[str, str, str]]:
    results = unpack.run(runs=3 if args.quick else 5)
    print(unpack.report(results))
    rows = []
    for r in results:
        if r.contender == "dockyard":
            data = next((x for x in results if x.layer == r.layer and x.contender == "tarfile, data filter"), None)
            gnu = next(x for x in results if x.layer == r.layer and x.contender == "GNU tar")
            rows.append((f"unpack: {r.layer}", f"{r.ratio:.2f}x", "GNU tar"))
            rows.append((f"unpack: {r.layer} (cpu)", f"{r.cpu / gnu.cpu:.2f}x", "GNU tar"))
            rows.append((f"unpack: {r.layer}", f"{r.wall / data.wall:.2f}x" if data else "not installed",
                         "tarfile, data filter" + ("" if data else " (no python 3.12+)")))
    return rows


def registry_part(args: argparse.Namespace) -> list[tuple[str, str, str]]:
    missing = [peer for peer in registry.PEERS if not shutil.which(peer)]
    if missing:
        print(f"{', '.join(missing)}: not installed")
        return [("registry", "not installed", ", ".join(missing))]
    mib = 40 if args.quick else 200
    medians = registry.run(mib=mib, runs=1 if args.quick else 3, python=args.python)
    print(registry.report(medians, mib))
    return [(f"registry: {what} ({mib} MiB)", f"{ratio:.2f}x", against)
            for what, ratio, against in registry.ratios(medians)]


def build_part(args: argparse.Namespace) -> list[tuple[str, str, str]]:
    results = build.run(runs=1 if args.quick else 3, python=args.python)
    print(build.report(results))
    ours = results.get("dockyard")
    if not isinstance(ours, dict):
        return [("build", str(ours), "")]
    rows = [("build: cached rebuild (dockyard, seconds)", f"{ours['cached']:.3f} s", "goal: at most 0.1 s")]
    for peer in ("BuildKit", "buildah bud"):
        theirs = results.get(peer)
        if not isinstance(theirs, dict):
            rows.append((f"build: vs {peer}", theirs or "not run", ""))
            continue
        for step in ("cold", "cached", "one file"):
            rows.append((f"build: {step}", f"{ours[step] / theirs[step]:.2f}x", peer))
    return rows


def script_part(part: str, args: argparse.Namespace) -> tuple[str, str, str]:
    """Run bench/<script> with a time limit, printing its table; a missing script or peer is said so."""
    script, full, quick, peers = SCRIPT_PARTS[part]
    path = os.path.join(BENCH, script)
    if not os.path.exists(path):
        print(f"{script}: not there yet")
        return (part, "not there yet", "")
    missing = [peer for peer in peers if not shutil.which(peer)]
    if missing:
        print(f"{', '.join(missing)}: not installed")
        return (part, "not installed", ", ".join(missing))
    with open(path) as f:
        source = f.read()
    argv = [sys.executable, path, *known_options(quick if args.quick else full, source)]
    if '"--python"' in source:
        argv += ["--python", args.python]
    try:
        result = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                timeout=args.part_timeout, cwd=REPO)
    except subprocess.TimeoutExpired as err:
        print((err.stdout or b"").decode(errors="replace") if isinstance(err.stdout, bytes) else err.stdout or "")
        print(f"{script}: stopped after {args.part_timeout} s")
        return (part, "timed out", "")
    print(result.stdout.rstrip())
    if result.returncode != 0:
        return (part, f"failed ({result.returncode})", "see its output above")
    return (part, "see above", f"{script}'s own table")


def known_options(options: list[str], source: str) -> list[str]:
    """The (flag, value) pairs whose flag the script's argparse defines (a script written later may differ)."""
    pairs = zip(options[::2], options[1::2])
    return [word for flag, value in pairs if f'"{flag}"' in source for word in (flag, value)]


if __name__ == "__main__":
    sys.exit(main())
