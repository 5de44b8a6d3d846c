"""final/ only: `events` tells what happened to containers: create, start, die, destroy."""

import json
import subprocess
import time

import pytest

from conftest import needs_root, failure_code
from test_lifecycle import no_process_of  # noqa: F401  (a fixture: no monitor outlives the test)

pytestmark = needs_root


def past_events(dockyard, *flags: str) -> list[str]:
    result = dockyard("events", "--since", "1h", "--until", str(time.time()), *flags)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_a_containers_life_shows_as_create_start_die_destroy(dockyard, rootfs):
    assert dockyard("run", "--network", "none", "--name", "brief", "--rootfs", rootfs, "sh", "-c", "exit 3").returncode == 3
    assert dockyard("rm", "brief").returncode == 0
    lines = past_events(dockyard)
    assert [line.split()[1:3] for line in lines] == [["container", action] for action in
                                                      ("create", "start", "die", "destroy")], lines
    assert all("name=brief" in line for line in lines)
    assert "exitCode=3" in lines[2]


def test_format_json_prints_one_docker_shaped_object_per_event(dockyard, rootfs):
    dockyard("run", "--network", "none", "--name", "brief", "--rootfs", rootfs, "true")
    events = [json.loads(line) for line in past_events(dockyard, "--format", "{{json .}}")]
    assert [e["Action"] for e in events] == ["create", "start", "die"]
    container_id = dockyard("ps", "-a", "-q").stdout.strip()
    for event in events:
        assert event["Type"] == "container" and event["Actor"]["ID"].startswith(container_id)
        assert event["Actor"]["Attributes"]["name"] == "brief"
        assert isinstance(event["time"], int) and event["timeNano"] // 10**9 == event["time"]


def test_format_fields_and_filters_pick_what_is_shown(dockyard, rootfs):
    dockyard("run", "--network", "none", "--name", "one", "--rootfs", rootfs, "true")
    dockyard("run", "--network", "none", "--name", "two", "--rootfs", rootfs, "sh", "-c", "exit 5")
    lines = past_events(dockyard, "--filter", "event=die", "--format", "{{.Actor.Attributes.name}} {{.Actor.Attributes.exitCode}}")
    assert lines == ["one 0", "two 5"]
    assert past_events(dockyard, "--filter", "container=two", "--format", "{{.Action}}") == ["create", "start", "die"]


def test_since_and_until_bound_the_events_shown(dockyard, rootfs):
    dockyard("run", "--network", "none", "--name", "early", "--rootfs", rootfs, "true")
    middle = time.time()
    dockyard("run", "--network", "none", "--name", "late", "--rootfs", rootfs, "true")
    names = {line.split("name=")[1].rstrip(")") for line in
             dockyard("events", "--since", str(middle), "--until", str(time.time())).stdout.splitlines()}
    assert names == {"late"}
    names = {line.split("name=")[1].rstrip(")") for line in
             dockyard("events", "--since", "1h", "--until", str(middle)).stdout.splitlines()}
    assert names == {"early"}


def test_events_follows_the_log_as_containers_come_and_go(dockyard, rootfs):
    dockyard("run", "--network", "none", "--name", "before", "--rootfs", rootfs, "true")
    watcher = dockyard.popen("events", "--since", "1h", "--format", "{{.Action}} {{.Actor.Attributes.name}}",
                             stdin=subprocess.DEVNULL)
    try:
        seen = [watcher.stdout.readline().strip() for _ in range(3)]  # the past, then it follows
        dockyard("run", "--network", "none", "--rm", "--name", "after", "--rootfs", rootfs, "true")
        while seen[-1] != "destroy after":
            seen.append(watcher.stdout.readline().strip())
    finally:
        watcher.terminate()
        watcher.communicate(timeout=60)
    assert seen == ["create before", "start before", "die before",
                    "create after", "start after", "die after", "destroy after"]


def test_a_template_action_that_is_not_supported_is_refused_with_a_hint(dockyard, rootfs):
    result = dockyard("events", "--since", "1h", "--until", "0s", "--format", "{{define \"x\"}}{{end}}")
    assert result.returncode == failure_code(result) and result.stderr.startswith("error: --format: {{define}} is not supported")
    assert "\nhint: " in result.stderr


def test_a_template_field_that_events_lack_is_refused_naming_the_fields(dockyard, rootfs):
    dockyard("run", "--network", "none", "--rootfs", rootfs, "true")
    result = dockyard("events", "--since", "1h", "--until", str(time.time()), "--format", "{{.Colour}}")
    assert result.returncode == failure_code(result) and result.stderr.startswith("error: --format: there is no field 'Colour'\nhint: ")
    assert "Action" in result.stderr


def test_a_time_that_cannot_be_read_is_refused_with_a_hint(dockyard):
    result = dockyard("events", "--since", "yesterday-ish")
    assert result.returncode == failure_code(result) and result.stderr.startswith("error: cannot read the time 'yesterday-ish'\nhint: ")


def test_exec_shows_as_exec_start_and_exec_die_with_its_exit_code(dockyard, rootfs):
    engine = dockyard.popen("run", "--network", "none", "--name", "box", "--rootfs", rootfs, "sh", "-c",
                            "echo ready; exec sleep 1000", stdin=subprocess.DEVNULL)
    try:
        assert engine.stdout.readline() == "ready\n"
        assert dockyard("exec", "box", "sh", "-c", "exit 6").returncode == 6
    finally:
        dockyard("rm", "-f", "box")
        engine.communicate(timeout=60)
    lines = past_events(dockyard, "--filter", "container=box", "--format", "{{.Action}}|{{.Actor.Attributes.exitCode}}")
    assert lines[2:4] == ["exec_start: sh -c exit 6|<no value>", "exec_die|6"], lines


@pytest.mark.usefixtures("no_process_of")
def test_stop_kill_and_restart_of_a_detached_container_show_as_events(dockyard, rootfs):
    assert dockyard("run", "-d", "--init", "--network", "none", "--name", "bg", "--rootfs", rootfs, "sleep", "1000").returncode == 0
    assert dockyard("restart", "-t", "0", "bg").returncode == 0
    assert dockyard("kill", "-s", "TERM", "bg").returncode == 0
    assert dockyard("wait", "bg").returncode == 0
    lines = past_events(dockyard, "--format", "{{.Action}} {{.Actor.Attributes.signal}}")
    actions = [line.split()[0] for line in lines]
    assert actions[:2] == ["create", "start"] and "restart" in actions, lines
    assert actions.index("stop") < actions.index("restart")  # restart = stop + start
    assert "kill 15" in lines, lines
