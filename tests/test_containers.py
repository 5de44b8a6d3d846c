"""Chapter 04 on: a container outlives its process, until `rm` (or `run --rm`)."""

import json
import os
import signal
import subprocess
import time

import pytest

from conftest import needs_root, failure_code

pytestmark = needs_root


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def ps_rows(dockyard, *flags: str) -> list[list[str]]:
    """ps's rows below the header, split on the three-space column gaps."""
    lines = ok(dockyard("ps", *flags)).splitlines()
    assert lines[0].split("   ")[0] == "CONTAINER ID"
    return [[cell.strip() for cell in line.split("   ") if cell.strip()] for line in lines[1:]]


def test_an_exited_container_is_listed_by_ps_a_with_its_exit_code_and_name(dockyard, rootfs):
    assert dockyard("run", "--name", "web", "--rootfs", rootfs, "sh", "-c", "exit 3").returncode == 3
    (row,) = ps_rows(dockyard, "-a")
    container_id, image, command, created, status, name = row
    assert len(container_id) == 12 and int(container_id, 16) >= 0
    assert image == rootfs and command.startswith('"sh -c') and created.endswith("ago")
    assert status.startswith("Exited (3) ") and name == "web"
    assert ps_rows(dockyard) == []  # without -a: only running containers


def test_a_running_container_is_up_in_ps_and_its_engine_holds_it(dockyard, rootfs):
    engine = dockyard.popen("run", "-i", "--name", "busy", "--rootfs", rootfs, "sh", "-c", "echo ready; read line",
                            stdin=subprocess.PIPE)
    try:
        assert engine.stdout.readline() == "ready\n"
        (row,) = ps_rows(dockyard)
        assert row[4].startswith("Up ") and row[5] == "busy"
    finally:
        engine.communicate("done\n", timeout=20)
    assert ps_rows(dockyard) == [] and ps_rows(dockyard, "-a")[0][4].startswith("Exited (0)")


def test_ps_q_prints_only_the_short_ids(dockyard, rootfs):
    ok(dockyard("run", "--rootfs", rootfs, "true"))
    ok(dockyard("run", "--rootfs", rootfs, "true"))
    ids = ok(dockyard("ps", "-aq")).split()
    assert len(ids) == 2 and all(len(i) == 12 for i in ids)


def test_each_container_gets_a_name_of_its_own_when_none_is_given(dockyard, rootfs):
    ok(dockyard("run", "--rootfs", rootfs, "true"))
    ok(dockyard("run", "--rootfs", rootfs, "true"))
    names = [row[-1] for row in ps_rows(dockyard, "-a")]
    assert len(set(names)) == 2 and all(names)


def test_rm_removes_the_container_its_name_and_its_layer(dockyard, rootfs):
    ok(dockyard("run", "--name", "gone", "--rootfs", rootfs, "sh", "-c", "echo x > /big"))
    assert ok(dockyard("rm", "gone")) == "gone\n"
    assert ps_rows(dockyard, "-a") == []
    assert os.listdir(os.path.join(dockyard.root, "containers")) == []
    ok(dockyard("run", "--name", "gone", "--rootfs", rootfs, "true"))  # the name is free again


def test_run_rm_leaves_no_container_behind(dockyard, rootfs):
    assert dockyard("run", "--rm", "--rootfs", rootfs, "sh", "-c", "exit 4").returncode == 4
    assert ps_rows(dockyard, "-a") == []
    assert os.listdir(os.path.join(dockyard.root, "containers")) == []


def test_a_taken_name_is_refused_with_a_hint_and_nothing_is_created(dockyard, rootfs):
    ok(dockyard("run", "--name", "twin", "--rootfs", rootfs, "true"))
    result = dockyard("run", "--name", "twin", "--rootfs", rootfs, "true")
    assert result.returncode == failure_code(result) and "already in use" in result.stderr and "hint:" in result.stderr
    assert len(ps_rows(dockyard, "-a")) == 1


def test_an_invalid_name_is_refused_with_exit_125(dockyard, rootfs):
    result = dockyard("run", "--name", "../escape", "--rootfs", rootfs, "true")
    assert result.returncode == failure_code(result) and "hint:" in result.stderr
    assert ps_rows(dockyard, "-a") == []


@pytest.mark.parametrize("driver", ["overlay", "vfs"])
def test_start_a_runs_the_container_again_on_its_own_layer(dockyard, rootfs, driver):
    script = "cat /count 2>/dev/null || echo 0 > /count; echo $(( $(cat /count) + 1 )) > /count; cat /count"
    assert ok(dockyard("--storage-driver", driver, "run", "--name", "again", "--rootfs", rootfs,
                       "sh", "-c", script)) == "1\n"
    assert ok(dockyard("start", "-a", "again")) == "1\n2\n"
    assert ps_rows(dockyard, "-a")[0][4].startswith("Exited (0)")
    assert not os.path.exists(os.path.join(rootfs, "count"))


def test_start_without_a_is_refused_with_a_hint(dockyard, rootfs):
    ok(dockyard("run", "--name", "ctr", "--rootfs", rootfs, "true"))
    result = dockyard("start", "ctr")
    assert result.returncode == failure_code(result) and "start -a" in result.stderr


def start_busy(dockyard, rootfs: str, name: str) -> subprocess.Popen:
    engine = dockyard.popen("run", "--name", name, "--rootfs", rootfs, "sh", "-c", "echo ready; exec sleep 60")
    assert engine.stdout.readline() == "ready\n"
    return engine


def test_rm_of_a_running_container_is_refused_without_f_and_the_others_are_removed(dockyard, rootfs):
    ok(dockyard("run", "--name", "stopped", "--rootfs", rootfs, "true"))
    engine = start_busy(dockyard, rootfs, "busy")
    try:
        result = dockyard("rm", "busy", "stopped")
        assert result.returncode == failure_code(result) and "rm -f" in result.stderr
        assert result.stdout == "stopped\n"  # as Docker's: each container on its own, the others still go
        assert [row[-1] for row in ps_rows(dockyard, "-a")] == ["busy"]
    finally:
        dockyard("rm", "-f", "busy")
        engine.communicate(timeout=20)


def test_rm_goes_on_past_a_missing_container_and_rm_f_does_not_mind_one(dockyard, rootfs):
    for name in ("one", "two"):
        ok(dockyard("run", "--name", name, "--rootfs", rootfs, "true"))
    result = dockyard("rm", "one", "nowhere", "two")
    assert result.returncode == failure_code(result) and "nowhere" in result.stderr
    assert result.stdout == "one\ntwo\n" and ps_rows(dockyard, "-a") == []
    result = dockyard("rm", "-f", "nowhere")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


DEEP = "i=0; while [ $i -lt 1500 ]; do mkdir d && cd d || exit 1; i=$((i+1)); done; echo bottom > f"


def test_a_container_that_nests_thousands_of_directories_is_removed_and_ps_still_works(dockyard, rootfs):
    ok(dockyard("run", "--name", "deep", "-v", "jar:/jar", "--rootfs", rootfs, "sh", "-c", f"{DEEP}; cd /jar; {DEEP}"))
    assert ok(dockyard("rm", "deep")) == "deep\n"  # a recursive walk (shutil.rmtree's) overflows at this depth
    assert ps_rows(dockyard, "-a") == []
    assert ok(dockyard("volume", "rm", "jar")) == "jar\n"
    assert not os.listdir(os.path.join(dockyard.root, "containers"))


def test_rm_f_kills_a_running_container_and_removes_it(dockyard, rootfs):
    engine = start_busy(dockyard, rootfs, "busy")
    assert ok(dockyard("rm", "-f", "busy")) == "busy\n"
    engine.communicate(timeout=20)
    assert engine.returncode == 137
    assert ps_rows(dockyard, "-a") == []


def test_a_container_whose_engine_was_killed_is_never_shown_running(dockyard, rootfs):
    engine = start_busy(dockyard, rootfs, "orphan")
    with open(f"/proc/{engine.pid}/task/{engine.pid}/children") as f:
        container = int(f.read().split()[0])
    engine.send_signal(signal.SIGKILL)
    engine.communicate(timeout=20)
    os.waitpid(container, 0)  # it dies with its engine, and the test runner (a subreaper) reaps it
    deadline = time.monotonic() + 10
    while (status := ps_rows(dockyard, "-a")[0][4]).startswith("Up") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert status == "Dead"
    assert ps_rows(dockyard) == []
    ok(dockyard("rm", "orphan"))


def test_an_unknown_container_is_refused_with_a_hint(dockyard):
    for command in (("rm", "nope"), ("start", "-a", "nope"), ("diff", "nope")):
        result = dockyard(*command)
        assert result.returncode == failure_code(result) and "no such container" in result.stderr and "hint:" in result.stderr


def test_a_container_can_be_named_by_a_prefix_of_its_id(dockyard, rootfs):
    ok(dockyard("run", "--rootfs", rootfs, "sh", "-c", "touch /made"))
    container_id = ok(dockyard("ps", "-aq")).strip()
    assert ok(dockyard("diff", container_id[:5])) == "A /made\n"


def test_inspect_shows_a_containers_state_and_config_as_docker_does(dockyard, rootfs):
    dockyard("run", "--name", "seen", "-e", "GREETING=hi", "-w", "/tmp", "--rootfs", rootfs, "sh", "-c", "exit 7")
    [record] = json.loads(ok(dockyard("inspect", "seen")))
    assert record["Name"] == "/seen" and record["Path"] == "sh" and record["Args"] == ["-c", "exit 7"]
    assert record["State"]["Status"] == "exited" and record["State"]["ExitCode"] == 7
    assert record["State"]["Running"] is False and record["State"]["OOMKilled"] is False
    assert "GREETING=hi" in record["Config"]["Env"] and record["Config"]["WorkingDir"] == "/tmp"


def test_start_a_i_attaches_stdin_again_and_start_a_alone_does_not(dockyard, rootfs):
    ok(dockyard("run", "--name", "reader", "--rootfs", rootfs, "sh", "-c", "cat; echo done"))
    assert ok(dockyard("start", "-a", "reader", input="ignored\n")) == "done\n"
    assert ok(dockyard("start", "-a", "-i", "reader", input="typed\n")) == "typed\ndone\n"
