"""final/ only: `rename OLD NEW`, of a stopped or a running container, and what its peers on a network see."""

from conftest import needs_root, failure_code
from test_lifecycle import no_process_of  # noqa: F401  (a fixture: no monitor of the root outlives the test)

pytestmark = needs_root


def ok(result) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def refused(result, words: str) -> None:
    assert result.returncode == failure_code(result), (result.stdout, result.stderr)
    assert result.stderr.startswith("error: ") and words in result.stderr and "\nhint: " in result.stderr


def test_a_renamed_container_answers_to_its_new_name_and_its_old_one_is_free(dockyard, rootfs):
    ok(dockyard("run", "--network", "none", "--name", "before", "--rootfs", rootfs, "true"))
    ok(dockyard("rename", "before", "after"))
    assert ok(dockyard("ps", "-a", "--format", "{{.Names}}")) == "after\n"
    assert ok(dockyard("inspect", "-f", "{{.Name}}", "after")) == "/after\n"
    refused(dockyard("inspect", "-f", "{{.Name}}", "before"), "before")
    ok(dockyard("run", "--network", "none", "--name", "before", "--rootfs", rootfs, "true"))  # free again
    assert sorted(ok(dockyard("ps", "-a", "--format", "{{.Names}}")).split()) == ["after", "before"]
    events = ok(dockyard("events", "--since", "1h", "--until", "0s", "--filter", "event=rename",
                         "--format", "{{.Actor.Attributes.name}} {{.Actor.Attributes.oldName}}"))
    assert events == "after /before\n"


def test_rename_refuses_a_taken_an_invalid_or_the_same_name_and_changes_nothing(dockyard, rootfs):
    for name in ("one", "two"):
        ok(dockyard("run", "--network", "none", "--name", name, "--rootfs", rootfs, "true"))
    refused(dockyard("rename", "one", "two"), "already in use")
    refused(dockyard("rename", "one", "no spaces"), "invalid container name")
    refused(dockyard("rename", "one", "one"), "already named")
    refused(dockyard("rename", "three", "four"), "no such container")
    assert sorted(ok(dockyard("ps", "-a", "--format", "{{.Names}}")).split()) == ["one", "two"]
    ok(dockyard("container", "rename", "two", "/deux"))  # Docker's leading slash, and the management command
    assert sorted(ok(dockyard("ps", "-a", "--format", "{{.Names}}")).split()) == ["deux", "one"]


def test_a_running_container_renamed_is_found_by_its_new_name_on_its_network(dockyard, rootfs, no_process_of):
    ok(dockyard("network", "create", "renamers"))
    for name in ("server", "client"):
        ok(dockyard("run", "-d", "--name", name, "--network", "renamers", "--rootfs", rootfs, "sleep", "100"))
    try:
        ok(dockyard("rename", "server", "backend"))
        hosts = ok(dockyard("exec", "client", "cat", "/etc/hosts"))
        assert "backend" in hosts.split() and "server" not in hosts.split()
        ok(dockyard("exec", "client", "ping", "-c", "1", "-W", "5", "backend"))
        assert ok(dockyard("inspect", "-f", "{{.State.Status}}", "backend")) == "running\n"
    finally:
        ok(dockyard("rm", "-f", "backend", "client"))
    ok(dockyard("network", "rm", "renamers"))
