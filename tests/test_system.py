"""final/ only: `system prune`, `system df`, `system info`, Docker's housekeeping."""

import subprocess

from conftest import needs_root
from test_lifecycle import no_process_of  # noqa: F401  (a fixture: no monitor of the root outlives the test)

pytestmark = needs_root


def ok(result) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_system_prune_removes_what_nothing_uses_and_keeps_what_something_does(dockyard, rootfs):
    ok(dockyard("import", rootfs, "kept"))
    ok(dockyard("import", rootfs, "unused"))
    ok(dockyard("run", "--network", "none", "--name", "user", "kept", "true"))
    ok(dockyard("run", "--network", "none", "-v", "/scratch", "--name", "gone", "kept", "true"))
    ok(dockyard("network", "create", "spare"))
    ok(dockyard("volume", "create", "named"))
    asked = dockyard("system", "prune", input="n\n")
    assert "Are you sure you want to continue? [y/N]" in ok(asked)
    assert len(ok(dockyard("ps", "-a", "-q")).split()) == 2  # "n" keeps everything
    out = ok(dockyard("system", "prune", "-f", "-a", "--volumes"))
    assert "Deleted Containers:" in out and "Deleted Networks:\nspare\n" in out and "Deleted Volumes:" in out
    assert "Untagged: kept:latest" in out and "Untagged: unused:latest" in out and "Total reclaimed space: " in out
    assert ok(dockyard("ps", "-a", "-q")) == "" and ok(dockyard("images", "-q")) == ""
    assert ok(dockyard("volume", "ls", "-q")) == "named\n"  # a named volume stays, as Docker's (anonymous go)
    assert "spare" not in ok(dockyard("network", "ls"))


def test_system_prune_without_a_keeps_named_images_and_the_ones_containers_use(dockyard, rootfs, no_process_of):
    ok(dockyard("import", rootfs, "kept"))
    ok(dockyard("run", "-d", "--network", "none", "--name", "busy", "kept", "sleep", "100"))
    try:
        out = ok(dockyard("system", "prune", "-f", "-a"))
        assert "kept:latest" not in out  # its container runs
        assert ok(dockyard("images", "--format", "{{.Repository}}")) == "kept\n"
        assert ok(dockyard("ps", "-q")) != ""
    finally:
        ok(dockyard("rm", "-f", "busy"))


def test_system_df_counts_images_containers_and_volumes(dockyard, rootfs):
    ok(dockyard("import", rootfs, "shelf"))
    ok(dockyard("run", "--network", "none", "--name", "done", "shelf", "true"))
    ok(dockyard("volume", "create", "jar"))
    rows = {line.split()[0]: line.split() for line in ok(dockyard("system", "df")).splitlines()[1:]}
    assert rows["Images"][1:3] == ["1", "1"] and rows["Containers"][1:3] == ["1", "0"]
    assert rows["Local"][2:4] == ["1", "0"]  # Local Volumes: one, unused
    assert ok(dockyard("system", "info")).startswith("Dockyard Root Dir: ")


def test_a_reader_that_goes_away_ends_a_command_quietly(dockyard, rootfs):
    ok(dockyard("import", rootfs, "shelf"))
    engine = dockyard.popen("inspect", *["shelf"] * 300)  # far more than a pipe holds
    head = subprocess.run(["head", "-c", "1"], stdin=engine.stdout, capture_output=True)
    engine.stdout.close()  # the reader is gone
    _, errors = engine.communicate(timeout=60)
    assert head.stdout == b"[" and errors == "", errors
    assert engine.returncode == 141  # 128 + SIGPIPE, as a piped tool ends
