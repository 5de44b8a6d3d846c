"""final/ only: `pause`/`unpause` freeze a container's processes, `top` lists them,
`stats` finds a container by name in its own --root."""

import subprocess

from conftest import become_nobody, needs_root, failure_code
from test_exec import running

pytestmark = needs_root

BUSY = ("sh", "-c", "'while :; do :; done'")


def cpu_percent(dockyard, name: str) -> float:
    result = dockyard("stats", "--no-stream", name)
    assert result.returncode == 0, result.stderr
    return float(result.stdout.splitlines()[1].split()[1].rstrip("%"))


def test_a_paused_container_uses_no_cpu_until_unpaused(dockyard, rootfs):
    with running(dockyard, rootfs, "busy", command=BUSY):
        assert cpu_percent(dockyard, "busy") > 0
        assert dockyard("pause", "busy").stdout == "busy\n"
        assert cpu_percent(dockyard, "busy") == 0.0
        assert dockyard("unpause", "busy").stdout == "busy\n"
        assert cpu_percent(dockyard, "busy") > 0


def test_exec_into_a_paused_container_is_refused_with_a_hint(dockyard, rootfs):
    with running(dockyard, rootfs, "box"):
        assert dockyard("pause", "box").returncode == 0
        result = dockyard("exec", "box", "true")
        assert (result.returncode, result.stderr) == (1, "error: container box is paused\nhint: unpause it first: unpause box\n")
        assert dockyard("unpause", "box").returncode == 0
        assert dockyard("exec", "box", "true").returncode == 0


def test_pausing_twice_or_unpausing_a_running_container_is_refused_with_a_hint(dockyard, rootfs):
    with running(dockyard, rootfs, "box"):
        unpause = dockyard("unpause", "box")
        assert unpause.returncode == failure_code(unpause) and unpause.stderr.startswith("error: container box is not paused\nhint: ")
        dockyard("pause", "box")
        again = dockyard("pause", "box")
        assert again.returncode == failure_code(again) and again.stderr.startswith("error: container box is already paused\nhint: ")


def test_pause_of_a_stopped_container_is_refused_with_a_hint(dockyard, rootfs):
    assert dockyard("run", "--network", "none", "--name", "done", "--rootfs", rootfs, "true").returncode == 0
    result = dockyard("pause", "done")
    assert result.returncode == failure_code(result) and result.stderr.startswith("error: container done is not running\nhint: ")


def test_rm_f_removes_a_paused_container(dockyard, rootfs):
    engine = dockyard.popen("run", "--network", "none", "--name", "box", "--rootfs", rootfs, "sh", "-c", "echo ready; exec sleep 1000",
                            stdin=subprocess.DEVNULL)
    assert engine.stdout.readline() == "ready\n"
    assert dockyard("pause", "box").returncode == 0
    assert dockyard("rm", "-f", "box").returncode == 0
    engine.communicate(timeout=60)
    assert dockyard("ps", "-a", "-q").stdout == ""


def test_top_lists_every_process_of_the_container_with_host_pids(dockyard, rootfs):
    with running(dockyard, rootfs, "box"):
        dockyard("exec", "-d", "box", "sleep", "777")
        result = dockyard("top", "box")
        assert result.returncode == 0, result.stderr
        header, *rows = [line.split(None, 7) for line in result.stdout.splitlines()]
        assert header == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
        commands = [row[7] for row in rows]
        assert "sleep 1000" in commands and "sleep 777" in commands, result.stdout
        for row in rows:  # host pids: each is a process on the host whose command matches
            with open(f"/proc/{row[1]}/cmdline", "rb") as f:
                assert f.read().rstrip(b"\0").replace(b"\0", b" ").decode() == row[7]


def test_top_of_a_stopped_container_is_refused_with_a_hint(dockyard, rootfs):
    assert dockyard("run", "--network", "none", "--name", "done", "--rootfs", rootfs, "true").returncode == 0
    result = dockyard("top", "done")
    assert result.returncode == failure_code(result) and "\nhint: " in result.stderr


def test_stats_finds_a_container_by_name_and_lists_only_its_own_roots(dockyard, rootfs, tmp_path):
    other = type(dockyard)(dockyard.impl, str(tmp_path / "other-root"))
    with running(dockyard, rootfs, "mine"), running(other, rootfs, "theirs"):
        mine = dockyard("stats", "--no-stream")
        ids = [line.split()[0] for line in mine.stdout.splitlines()[1:]]
        assert ids == [dockyard("ps", "-q").stdout.strip()], mine.stdout
        assert dockyard("stats", "--no-stream", "mine").stdout.splitlines()[1].split()[0] == ids[0]


def test_pause_of_a_rootless_container_is_refused_with_a_hint(nobody):
    engine = subprocess.Popen(nobody.command("run", "--network", "none", "--name", "box", "--rootfs", nobody.rootfs,
                                             "sh", "-c", "echo ready; exec sleep 1000"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                              preexec_fn=become_nobody, cwd="/", env={**nobody.impl.env(), "HOME": "/", "USER": "nobody"})
    try:
        assert engine.stdout.readline() == "ready\n", engine.stderr.read()
        result = nobody("pause", "box")
        assert result.returncode == failure_code(result)
        assert result.stderr.startswith("error: cannot pause: this container has no freezer cgroup\nhint: ")
        assert nobody("exec", "box", "true").returncode == 0  # still running, not half frozen
    finally:
        nobody("rm", "-f", "box")
        engine.communicate(timeout=60)
