"""Fixtures for the one black-box suite that checks every chapter and final/.

    pytest                          every snapshot in chapters/ and final/
    pytest --impl final             one implementation
    pytest --impl ~/my/03_cgroups   a student's copy (chapter read from NN_)

Each test drives the implementation's CLI in a subprocess with its own
--root, and fails if it leaves a mount, a process or a cgroup behind.

Markers: `bad_input` names a test of a request the engine must refuse; every
other test of test_escape.py, test_namespaces.py and test_build.py must fail
against an engine that refuses everything (test_suite.py checks this).
Skips come from probes of the machine, never from the engine's own words,
and under CI=1 a missing program that CI installs is a failure.
"""

import ctypes
import functools
import glob
import json
import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import warnings
import zlib

import pytest

from table import FINAL, chapters_for

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from tools.busybox_rootfs import make_rootfs  # noqa: E402


# --- choosing implementations --------------------------------------------------

class Impl:
    """One implementation of the CLI: a package directory and its chapter."""

    def __init__(self, path: str, chapter: int | None = None) -> None:
        self.path = os.path.abspath(path)
        self.name = os.path.basename(self.path.rstrip("/"))
        self.chapter = chapter or chapter_of(self.name)

    def argv(self) -> list[str]:
        return [sys.executable, "-m", self.name]

    def env(self) -> dict[str, str]:
        return {**os.environ, "PYTHONPATH": os.path.dirname(self.path), "PYTHONDONTWRITEBYTECODE": "1"}

    def __repr__(self) -> str:
        return self.name


def chapter_of(name: str) -> int:
    if name == "final":
        return FINAL
    match = re.match(r"(\d\d)_", name)
    if not match:
        raise pytest.UsageError(f"cannot tell the chapter of {name!r}: name it NN_something or pass --chapter")
    return int(match.group(1))


def implementations(config: pytest.Config) -> list[Impl]:
    paths = config.getoption("--impl")
    if paths:
        return [Impl(p if os.path.isdir(p) else os.path.join(REPO, p), config.getoption("--chapter"))
                for p in paths]
    chapters = sorted(d for d in os.listdir(os.path.join(REPO, "chapters")) if re.match(r"\d\d_", d))
    return [Impl(os.path.join(REPO, "chapters", d)) for d in chapters] + [Impl(os.path.join(REPO, "final"))]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "impl" in metafunc.fixturenames:
        impls = implementations(metafunc.config)
        metafunc.parametrize("impl", impls, ids=[i.name for i in impls], scope="module")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    keep, drop = [], []
    for item in items:
        chapters = chapters_for(item.nodeid)
        if chapters == "missing":
            raise pytest.UsageError(f"{item.nodeid} is not in tests/table.py: say which chapter introduces it")
        impl = getattr(item, "callspec", None) and item.callspec.params.get("impl")
        if impl is not None and impl.chapter not in chapters:
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


# --- what the machine must have ---------------------------------------------------
# Every skip asks the machine itself. A skip that trusted the engine's error
# message ("idmapped mounts need ...") would hide the day the engine broke.

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: run sudo sh tools/test.sh")
IDMAP_PROBE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "probes", "idmapped_mount.py")


def require_programs(*names: str) -> None:
    """Skip unless every program is on PATH; under CI=1, fail (.ci/run installs them all)."""
    missing = [name for name in names if not shutil.which(name)]
    if not missing:
        return
    reason = f"not installed: {' '.join(missing)} (sh tools/packages.sh test installs it)"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI's install step should have provided it", pytrace=False)
    pytest.skip(reason)


@functools.lru_cache(maxsize=None)
def _why_no_idmapped_mounts(device: int, path: str) -> str:
    probe = subprocess.run([sys.executable, IDMAP_PROBE, path], capture_output=True, text=True)
    return "" if probe.returncode == 0 else (probe.stderr.strip() or f"probe exit {probe.returncode}")


def require_idmapped_mounts(path: str) -> None:
    """For overlay with --userns: skip where the kernel (not the engine) cannot idmap `path`'s filesystem."""
    why = _why_no_idmapped_mounts(os.stat(path).st_dev, path)
    if why:
        pytest.skip(f"the kernel cannot idmap a mount here ({why}); "
                    "overlay with --userns needs Linux 5.19+ on ext4, xfs, btrfs or tmpfs")


# --- the busybox rootfs --------------------------------------------------------------


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A pristine busybox rootfs; copy it (the `rootfs` fixture) before changing it."""
    return make_rootfs(str(tmp_path_factory.mktemp("busybox")))


@pytest.fixture
def rootfs(busybox_rootfs: str, tmp_path) -> str:
    """A busybox rootfs of this test's own."""
    target = str(tmp_path / "rootfs")
    shutil.copytree(busybox_rootfs, target, symlinks=True)
    return target


# --- driving the CLI --------------------------------------------------------------

class Dockyard:
    """Runs one implementation's CLI with this test's own --root."""

    def __init__(self, impl: Impl, root: str) -> None:
        self.impl, self.root = impl, root

    def command(self, *args: str) -> list[str]:
        if "--userns" in args:
            skip_where_the_kernel_refuses_user_namespaces()
        return [*self.impl.argv(), "--root", self.root, *args]

    def __call__(self, *args: str, input: str | None = None, timeout: float = 60,
                 **kwargs) -> subprocess.CompletedProcess:
        """Run to completion; stdout and stderr come back as text."""
        kwargs.setdefault("cwd", os.path.dirname(self.impl.path))  # `python -m` looks in the cwd first
        return subprocess.run(self.command(*args), input=input, capture_output=True, text=True,
                              timeout=timeout, env=kwargs.pop("env", self.impl.env()), **kwargs)

    def popen(self, *args: str, **kwargs) -> subprocess.Popen:
        """Start in the background (remember to wait for it)."""
        kwargs.setdefault("stdout", subprocess.PIPE)
        kwargs.setdefault("stderr", subprocess.PIPE)
        kwargs.setdefault("cwd", os.path.dirname(self.impl.path))
        return subprocess.Popen(self.command(*args), text=True, env=kwargs.pop("env", self.impl.env()), **kwargs)


GLOBAL_OPTIONS_WITH_VALUES = ("--root", "--storage-driver")
GROUPED = {"container": "attach commit cp create diff exec export inspect kill logs pause port rename restart rm run "
                        "start stats stop top unpause wait".split(),  # final/management.py's
           "image": "build import load pull push save tag".split()}


def failure_code(result) -> int:
    """The exit code Docker gives the failed command `result` ran: 125 for `run`'s own failures, 1 for
    any other command's (a command line that cannot be read is 125 for every command: not this)."""
    argv = list(result.args)
    words = iter(argv[argv.index("-m") + 2:])
    for word in words:
        if word in GLOBAL_OPTIONS_WITH_VALUES:
            next(words, None)
        elif not word.startswith("-"):
            sub = next(words, None)
            command = sub if sub in GROUPED.get(word, ()) else word
            return 125 if command == "run" else 1
    return 125


@pytest.fixture
def dockyard(impl: Impl, tmp_path) -> Dockyard:
    return Dockyard(impl, str(tmp_path / "state"))


@pytest.fixture
def busybox_image(dockyard: Dockyard, busybox_rootfs: str) -> str:
    """Chapter 05 on: the busybox rootfs imported as image busybox:latest (CMD sh) into this test's --root."""
    result = dockyard("import", "-c", 'CMD ["sh"]', busybox_rootfs, "busybox:latest")
    assert result.returncode == 0, result.stderr
    return "busybox:latest"


# --- an ordinary user ---------------------------------------------------------------
# Rootless tests run the CLI as `nobody`, who can read neither /root nor pytest's
# private tmp dirs: they get a world-readable copy of the implementation and a
# scratch directory of their own, and Debian's python if the current one is hidden.

NOBODY = 65534


def become_nobody() -> None:
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


def python_for_nobody() -> str:
    for python in (sys.executable, "/usr/bin/python3"):
        try:
            if subprocess.run([python, "-c", "0"], preexec_fn=become_nobody, cwd="/",
                              capture_output=True).returncode == 0:
                return python
        except OSError:
            continue
    pytest.skip("no python interpreter that an ordinary user can run")


class NobodyDockyard(Dockyard):
    """The CLI run as uid 65534 with a --root and a rootfs that it owns."""

    def __init__(self, impl: Impl, scratch: str, busybox: str) -> None:
        copy = os.path.join(scratch, "impl", impl.name)
        shutil.copytree(impl.path, copy, ignore=shutil.ignore_patterns("__pycache__"))
        super().__init__(Impl(copy, impl.chapter), os.path.join(scratch, "state"))
        self.python = python_for_nobody()
        self.rootfs = shutil.copytree(busybox, os.path.join(scratch, "rootfs"), symlinks=True)
        for directory, _, files in os.walk(scratch):
            os.chown(directory, NOBODY, NOBODY)
            for name in files:
                os.lchown(os.path.join(directory, name), NOBODY, NOBODY)

    def command(self, *args: str) -> list[str]:
        return [self.python, "-m", self.impl.name, "--root", self.root, *args]

    def __call__(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        env = {**self.impl.env(), "HOME": "/", "USER": "nobody"}
        return super().__call__(*args, preexec_fn=become_nobody, cwd="/", env=env, **kwargs)


@functools.lru_cache(maxsize=None)
def why_no_user_namespaces() -> str:
    """Why util-linux's `unshare --user true` (never the engine) fails here (a chroot, a CI container); "" if not."""
    probe = subprocess.run(["unshare", "--user", "true"], capture_output=True, text=True)
    return "" if probe.returncode == 0 else (probe.stderr.strip() or f"unshare exited {probe.returncode}")


def skip_where_the_kernel_refuses_user_namespaces() -> None:
    """For a test that runs --userns: skip, with the kernel's reason, where user namespaces are refused (#13)."""
    if why := why_no_user_namespaces():
        pytest.skip(f"the kernel refuses user namespaces here: {why}")


def require_user_namespaces_for_nobody() -> None:
    """Skip where the kernel (asked with util-linux's unshare, never the engine) gives nobody no usable
    user namespace: a chroot, some CI containers, Ubuntu's AppArmor restriction (#13)."""
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "mount", "--make-rprivate", "/"],
                           preexec_fn=become_nobody, cwd="/", capture_output=True, text=True)
    if probe.returncode != 0:
        restricted = "/proc/sys/kernel/apparmor_restrict_unprivileged_userns"
        why = (f"kernel.apparmor_restrict_unprivileged_userns={open(restricted).read().strip()}"
               if os.path.exists(restricted) else probe.stderr.strip())
        pytest.skip(f"the kernel gives an ordinary user no usable user namespace ({why})")


@pytest.fixture
def nobody(request, impl: Impl, busybox_rootfs: str):
    """The CLI as an ordinary user would run it (rootless)."""
    require_user_namespaces_for_nobody()
    scratch = tempfile.mkdtemp(prefix="dockyard-nobody-")
    engine_place(request, scratch)
    os.chmod(scratch, 0o755)
    try:
        yield NobodyDockyard(impl, scratch, busybox_rootfs)
    finally:
        remove_run_dirs([scratch])  # before its roots go: they name the run dirs
        shutil.rmtree(scratch, ignore_errors=True)


# --- nothing may leak -------------------------------------------------------------
# The test runner becomes a "child subreaper": a container process that
# outlives its engine is re-parented to us instead of to init, so we can see it.
#
# The checks look only at what the engine under test could have made: mounts
# under the test's own directories (its --root, its rootfs) or named for its
# containers or cgroup parent, the test's own cgroup parent, processes that
# were ours. Those are removed once reported. Anything else that changed on
# the machine meanwhile (other programs, other suites) is reported as a
# warning and left alone.

PR_SET_CHILD_SUBREAPER = 36
ENGINE_PLACES = pytest.StashKey[list]()
# Long-lived helpers that a module- or session-scoped fixture starts (a private
# containerd, say) are children of the runner between tests, not leaks: such a
# fixture adds its process's pid here and removes it once it has stopped it.
DAEMONS: set[int] = set()


class LeakWarning(UserWarning):
    """A change on the machine during a test that the engine could not have made."""


def pytest_configure(config: pytest.Config) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    config.addinivalue_line("markers", "bad_input: a request the engine must refuse (see test_suite.py)")


def engine_place(request: pytest.FixtureRequest, path: str) -> None:
    """Count `path` (a scratch directory outside tmp_path) among the places this test's engine writes."""
    request.node.stash[ENGINE_PLACES].append(path)


def mounts() -> set[tuple[str, str]]:
    """(mount id, mount point) of every mount this process sees."""
    with open("/proc/self/mountinfo") as f:
        return {(fields[0], fields[4]) for fields in map(str.split, f)}


def container_ids(places: list[str]) -> set[str]:
    """The ids of the containers in the --roots under these places."""
    records = [path for place in places for root in (place, *glob.glob(os.path.join(place, "*")))
               for path in glob.glob(os.path.join(root, "containers", "*"))]
    return {os.path.basename(path) for path in records if len(os.path.basename(path)) >= 12}


def made_by_the_engine(mount_point: str, places: list[str], names: set[str]) -> bool:
    """Is this mount under the test's places, or named for its containers or cgroup parent?"""
    point = mount_point.encode().decode("unicode_escape")  # mountinfo writes a space as \040
    if any(point == place or point.startswith(place.rstrip("/") + "/") for place in places):
        return True
    return any(name in point for name in names)


def our_cgroups(parent: str) -> set[str]:
    """The test's cgroup parent, wherever a cgroup tree holds it."""
    bases = ("/sys/fs/cgroup", *(f"/sys/fs/cgroup/{c}" for c in os.listdir("/sys/fs/cgroup")))
    return {f"{base}/{parent}" for base in bases if os.path.isdir(f"{base}/{parent}")}


def remove_cgroups(parents: list[str]) -> None:
    """Kill what is in these cgroup trees and rmdir them, children first."""
    for parent in parents:
        for directory, _, _ in sorted(os.walk(parent), key=lambda entry: -len(entry[0])):
            with open(os.path.join(directory, "cgroup.procs")) as f:
                kill_and_reap([int(pid) for pid in f.read().split()])
            try:
                os.rmdir(directory)
            except OSError:
                pass


def orphans() -> list[int]:
    """Processes re-parented to the test runner, and zombies it has not reaped."""
    me, found = str(os.getpid()), []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me and int(pid) not in DAEMONS:
            found.append(int(pid))
    return found


def kill_and_reap(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


def leaked_processes() -> list[str]:
    """Our orphans, killed and reaped (what they leave, as zombies, comes to us too)."""
    leaked = orphans()
    kill_and_reap(leaked)
    if leaked:
        time.sleep(0.2)
        kill_and_reap(orphans())
    return [f"processes left running: {leaked}"] if leaked else []


def leaked_mounts(before: set, places: list[str], parent: str) -> list[str]:
    """New mounts the engine could have made, unmounted; others are only reported, as warnings."""
    new = sorted(mounts() - before, key=lambda mount: -len(mount[1]))  # deepest first
    names = {parent, *container_ids(places)}
    ours = [point for _, point in new if made_by_the_engine(point, places, names)]
    others = [point for _, point in new if point not in ours]
    for point in ours:
        subprocess.run(["umount", "-l", point], capture_output=True)
    if others:
        warnings.warn(LeakWarning(f"mounts appeared elsewhere during the test (left alone): {others}"))
    return [f"mounts left behind: {sorted(ours)}"] if ours else []


def leaked_cgroups(parent: str) -> list[str]:
    """The test's own cgroup parent, removed with what runs in it, and the engines' lock files."""
    leaked = sorted(our_cgroups(parent))
    shutil.rmtree(f"/run/dockyard/cgroups/{parent}", ignore_errors=True)
    if os.path.exists(f"/run/dockyard/cgroups/{parent}.lock"):
        os.unlink(f"/run/dockyard/cgroups/{parent}.lock")
    remove_cgroups(leaked)  # report once; don't leave them to the machine
    return [f"cgroups left behind: {leaked}"] if leaked else []


def remove_run_dirs(places: list[str]) -> None:
    """The run dirs (locks, sockets, fifos under /run) of the test's roots, which go with the roots.

    The engine removes a container's run dir when the container is removed; a test that deletes its
    --root with containers still in it would otherwise leave their run dirs until the next reboot."""
    roots = {os.path.dirname(found) for place in places
             for pattern in ("containers", "*/containers", "*/*/containers")
             for found in glob.glob(os.path.join(place, pattern))}
    for root in roots:
        key = f"{zlib.crc32(os.path.abspath(root).encode()):08x}"  # final/container.py's run_dir
        for base in ("/run/dockyard/containers", f"/tmp/dockyard-{NOBODY}/dockyard/containers"):
            shutil.rmtree(os.path.join(base, key), ignore_errors=True)


def broken_dev_null() -> list[str]:
    """`save -o /dev/null` once renamed a file over it: put the device back if so."""
    if stat.S_ISCHR(os.lstat(os.devnull).st_mode):
        return []
    os.unlink(os.devnull)
    os.mknod(os.devnull, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    return ["the host's /dev/null was replaced by a file (restored)"]


def leaked_network(places: list[str]) -> list[str]:
    """Links and firewall rules of the networks that the test's roots recorded, removed if still there."""
    bridges, veths = set(), set()
    for path in (p for place in places for p in glob.glob(f"{place}/*/networks/*.json")):  # final/'s records
        with open(path) as f:
            record = json.load(f)
        bridges.add(record["bridge"])
        veths |= {lease["veth"] for lease in record["leases"].values()}
    if not bridges:
        return []
    links = sorted((bridges | veths) & set(os.listdir("/sys/class/net")))
    rules = [(table, words) for table, chain in (("filter", "FORWARD"), ("nat", "POSTROUTING"))
             for rule in subprocess.run(["iptables", "-w", "-t", table, "-S", chain], capture_output=True,
                                        text=True).stdout.splitlines()
             if (words := shlex.split(rule)) and any(f"dockyard:{bridge}" in words for bridge in bridges)]
    for table, words in rules:
        subprocess.run(["iptables", "-w", "-t", table, "-D", *words[1:]], capture_output=True)
    for link in links:
        subprocess.run(["ip", "link", "del", link], capture_output=True)
    leaked = [f"link {link}" for link in links] + [f"rule {shlex.join(words)}" for _, words in rules]
    return [f"network links and rules left behind: {leaked}"] if leaked else []


@pytest.fixture(autouse=True)
def leaves_nothing_behind(request, monkeypatch, tmp_path):
    # Each test gets a cgroup parent of its own, so tests running side by side
    # (two suites at once, say) never mistake each other's cgroups for leaks.
    parent = f"dockyard-test-{os.getpid()}-{os.path.basename(tmp_path)}"[:100]
    monkeypatch.setenv("DOCKYARD_CGROUP_PARENT", parent)
    request.node.stash[ENGINE_PLACES] = [str(tmp_path)]
    before = mounts()
    yield
    places = request.node.stash[ENGINE_PLACES]
    problems = [*leaked_processes(), *leaked_mounts(before, places, parent), *leaked_cgroups(parent),
                *leaked_network(places),
                *broken_dev_null()]
    remove_run_dirs(places)
    assert not problems, "; ".join(problems)
