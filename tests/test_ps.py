"""final/ only: `ps --filter/--format`, inspect's State block, `container prune`."""

import json
import os
import subprocess

from conftest import needs_root, failure_code
from test_exec import running

pytestmark = needs_root


def names(result) -> list[str]:
    assert result.returncode == 0, result.stderr
    return sorted(result.stdout.split())


def state_of(dockyard, name: str) -> dict:
    result = dockyard("inspect", name)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)[0]["State"]


def test_ps_filters_by_status_name_and_exit_code(dockyard, rootfs):
    dockyard("run", "--network", "none", "--name", "ok-one", "--rootfs", rootfs, "true")
    dockyard("run", "--network", "none", "--name", "failed-one", "--rootfs", rootfs, "sh", "-c", "exit 3")
    with running(dockyard, rootfs, "up-one"):
        assert names(dockyard("ps", "--format", "{{.Names}}")) == ["up-one"]
        assert names(dockyard("ps", "--filter", "status=exited", "--format", "{{.Names}}")) == ["failed-one", "ok-one"]
        assert names(dockyard("ps", "-a", "--filter", "name=^f", "--format", "{{.Names}}")) == ["failed-one"]
        assert names(dockyard("ps", "-a", "--filter", "exited=3", "--format", "{{.Names}}")) == ["failed-one"]
        both = dockyard("ps", "-a", "--filter", "status=exited", "--filter", "status=running", "--format", "{{.Names}}")
        assert names(both) == ["failed-one", "ok-one", "up-one"]


def test_ps_filters_by_the_labels_a_container_has_from_its_image(dockyard, rootfs):
    assert dockyard("import", "-c", "LABEL tier=web", "-c", 'CMD ["true"]', rootfs, "labelled").returncode == 0
    dockyard("run", "--network", "none", "--name", "web", "labelled")
    dockyard("run", "--network", "none", "--name", "plain", "--rootfs", rootfs, "true")
    assert names(dockyard("ps", "-a", "--filter", "label=tier", "--format", "{{.Names}}")) == ["web"]
    assert names(dockyard("ps", "-a", "--filter", "label=tier=web", "--format", "{{.Names}}")) == ["web"]
    assert names(dockyard("ps", "-a", "--filter", "label=tier=db", "--format", "{{.Names}}")) == []
    assert dockyard("ps", "-a", "--filter", "name=web", "--format", "{{.Labels}}").stdout == "tier=web\n"


def test_ps_format_prints_fields_json_and_tables(dockyard, rootfs):
    dockyard("run", "--network", "none", "--name", "done", "--rootfs", rootfs, "sh", "-c", "exit 2")
    container_id = dockyard("ps", "-a", "-q").stdout.strip()
    assert dockyard("ps", "-a", "--format", "{{.ID}}: {{.Names}}").stdout == f"{container_id}: done\n"
    fields = json.loads(dockyard("ps", "-a", "--format", "{{json .}}").stdout)
    assert {fields["ID"], fields["Names"], fields["State"]} == {container_id, "done", "exited"}
    assert fields["Status"].startswith("Exited (2) ")
    assert fields["Command"] == '''"sh -c 'exit 2'"'''
    table = dockyard("ps", "-a", "--format", "table {{.ID}}\\t{{.Names}}\\t{{.State}}").stdout.splitlines()
    assert [line.split() for line in table] == [["CONTAINER", "ID", "NAMES", "STATE"], [container_id, "done", "exited"]]


def test_a_paused_container_shows_in_ps_and_inspect(dockyard, rootfs):
    with running(dockyard, rootfs, "box"):
        dockyard("pause", "box")
        assert dockyard("ps", "--format", "{{.State}} {{.Status}}").stdout.startswith("paused Up ")
        assert dockyard("ps", "--format", "{{.Status}}").stdout.rstrip().endswith("(Paused)")
        state = state_of(dockyard, "box")
        assert (state["Status"], state["Running"], state["Paused"]) == ("paused", True, True)
        dockyard("unpause", "box")
        assert state_of(dockyard, "box")["Paused"] is False


def test_inspect_state_of_a_running_and_of_an_exited_container(dockyard, rootfs):
    with running(dockyard, rootfs, "box"):
        state = state_of(dockyard, "box")
        assert (state["Status"], state["Running"], state["Dead"], state["ExitCode"]) == ("running", True, False, 0)
        pid1 = [line.split()[1] for line in dockyard("top", "box").stdout.splitlines()[1:]]
        assert str(state["Pid"]) in pid1
        assert state["FinishedAt"] == "0001-01-01T00:00:00Z" and state["StartedAt"] != state["FinishedAt"]
    dockyard("run", "--network", "none", "--name", "done", "--rootfs", rootfs, "sh", "-c", "exit 4")
    state = state_of(dockyard, "done")
    assert (state["Status"], state["Running"], state["Pid"], state["ExitCode"]) == ("exited", False, 0, 4)
    assert "0001" not in state["StartedAt"] + state["FinishedAt"]


def test_a_container_whose_engine_was_killed_is_dead_in_ps_and_inspect(dockyard, rootfs):
    engine = dockyard.popen("run", "--network", "none", "--name", "orphan", "--rootfs", rootfs, "sh", "-c", "echo ready; exec sleep 1000",
                            stdin=subprocess.DEVNULL)
    assert engine.stdout.readline() == "ready\n"
    with open(f"/proc/{engine.pid}/task/{engine.pid}/children") as f:
        pid1 = int(f.read().split()[0])
    engine.kill()
    engine.communicate(timeout=60)
    os.waitpid(pid1, 0)  # it dies with its engine, and the test runner (a subreaper) reaps it
    assert dockyard("ps", "-a", "--format", "{{.Names}} {{.State}} {{.Status}}").stdout == "orphan dead Dead\n"
    state = state_of(dockyard, "orphan")
    assert (state["Status"], state["Dead"], state["Running"]) == ("dead", True, False)
    assert dockyard("rm", "orphan").returncode == 0


def test_container_prune_removes_only_stopped_containers(dockyard, rootfs):
    dockyard("run", "--network", "none", "--name", "old-one", "--rootfs", rootfs, "true")
    dockyard("run", "--network", "none", "--name", "old-two", "--rootfs", rootfs, "false")
    with running(dockyard, rootfs, "alive"):
        refused = dockyard("container", "prune", input="n\n")
        assert "Are you sure you want to continue?" in refused.stdout
        assert names(dockyard("ps", "-a", "--format", "{{.Names}}")) == ["alive", "old-one", "old-two"]
        result = dockyard("container", "prune", "-f")
        assert result.returncode == 0, result.stderr
        deleted = result.stdout.split("Deleted Containers:\n")[1].split("\n\n")[0].split()
        assert len(deleted) == 2 and all(len(i) == 64 for i in deleted)
        assert "Total reclaimed space: " in result.stdout
        assert names(dockyard("ps", "-a", "--format", "{{.Names}}")) == ["alive"]


def test_bad_filters_and_templates_are_refused_with_a_hint(dockyard):
    for args in (["ps", "--filter", "colour=red"], ["ps", "--filter", "status=sleepy"],
                 ["ps", "--format", "{{if .ID}}x"], ["ps", "--format", "{{colour .ID}}"], ["container", "prune", "-f", "--filter", "name=x"]):
        result = dockyard(*args)
        assert result.returncode == failure_code(result), args
        assert result.stderr.startswith("error: ") and "\nhint: " in result.stderr, result.stderr


def test_inspect_format_prints_fields_of_each_object(dockyard, rootfs):
    dockyard("run", "--network", "none", "--name", "done", "--rootfs", rootfs, "sh", "-c", "exit 9")
    result = dockyard("inspect", "-f", "{{.Name}} {{.State.Status}} {{.State.ExitCode}}", "done")
    assert (result.returncode, result.stdout) == (0, "/done exited 9\n"), result.stderr
    state = json.loads(dockyard("inspect", "--format", "{{json .State}}", "done").stdout)
    assert (state["Running"], state["ExitCode"]) == (False, 9)


def test_ps_last_latest_and_no_trunc(dockyard, rootfs):
    for name in ("first", "second", "third"):
        dockyard("run", "--network", "none", "--name", name, "--rootfs", rootfs, "true")
    assert dockyard("ps", "-n", "2", "--format", "{{.Names}}").stdout == "third\nsecond\n"
    assert dockyard("ps", "-l", "--format", "{{.Names}}").stdout == "third\n"
    whole = dockyard("ps", "-l", "--no-trunc", "--format", "{{.ID}}").stdout.strip()
    assert len(whole) == 64 and whole.startswith(dockyard("ps", "-l", "-q").stdout.strip())
