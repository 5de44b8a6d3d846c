"""final/ only: run's --env-file and --mount (Docker's other spellings of -e, -v and --tmpfs), --stop-signal
and --stop-timeout."""

import os

from conftest import needs_root, failure_code
from test_lifecycle import no_process_of, wait_until  # noqa: F401  (no_process_of: a fixture)

pytestmark = needs_root


def ok(result) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_env_file_lines_come_before_e_and_comments_are_skipped(dockyard, rootfs, tmp_path):
    env_file = tmp_path / "env"
    env_file.write_text("# not a variable\n\nFROM_FILE=yes\nBOTH=file\n  INDENTED=kept\nPASSED\n")
    script = 'echo "$FROM_FILE $BOTH $INDENTED $PASSED"; env | grep -c "^#" || true'
    for order in (["--env-file", str(env_file), "-e", "BOTH=flag"], ["-e", "BOTH=flag", "--env-file", str(env_file)]):
        out = ok(dockyard("run", "--rm", "--network", "none", *order, "--rootfs", rootfs, "sh", "-c", script,
                          env={**os.environ, "PASSED": "from-the-engine"}))
        assert out == "yes flag kept from-the-engine\n0\n", order


def test_mount_binds_volumes_and_tmpfs_as_v_and_tmpfs_do(dockyard, rootfs, tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    (source / "file").write_text("from the host\n")
    out = ok(dockyard("run", "--rm", "--network", "none",
                      "--mount", f"type=bind,source={source},target=/data,readonly",
                      "--mount", "type=tmpfs,destination=/scratch,tmpfs-size=1m",
                      "--mount", "type=volume,src=kept,dst=/kept",
                      "--mount", "type=volume,target=/anonymous",
                      "--rootfs", rootfs, "sh", "-c",
                      "cat /data/file; touch /data/new 2>/dev/null || echo read-only; "
                      "grep ' /scratch ' /proc/mounts | cut -d' ' -f3; echo v > /kept/v; ls -d /anonymous"))
    assert out == "from the host\nread-only\ntmpfs\n/anonymous\n"
    assert not (source / "new").exists()
    assert ok(dockyard("volume", "ls", "-q")) == "kept\n"  # the anonymous one went with --rm, as Docker's
    assert ok(dockyard("run", "--rm", "--network", "none", "-v", "kept:/k", "--rootfs", rootfs, "cat", "/k/v")) == "v\n"


def test_a_bad_mount_or_env_file_is_refused_and_makes_no_container(dockyard, rootfs, tmp_path):
    for flags, words in [(["--mount", f"type=bind,source={tmp_path}/missing,target=/d"], "does not exist"),
                         (["--mount", "type=bind,source=/tmp"], "absolute target"),
                         (["--mount", "type=tmpfs,target=/t,source=/tmp"], "not for this type"),
                         (["--mount", "type=nfs,target=/t"], "bind, volume or tmpfs"),
                         (["--env-file", str(tmp_path / "missing")], "cannot read the env file")]:
        result = dockyard("run", "--network", "none", *flags, "--rootfs", rootfs, "true")
        assert result.returncode == 125 and words in result.stderr and "\nhint: " in result.stderr, (flags, result.stderr)
    assert ok(dockyard("ps", "-a", "-q")) == "" and ok(dockyard("volume", "ls", "-q")) == ""


def test_stop_sends_the_stop_signal_and_keeps_the_stop_timeout(dockyard, rootfs, no_process_of):
    script = 'trap "echo got-usr1; exit 3" USR1; echo ready; while :; do sleep 0.05; done'
    ok(dockyard("run", "-d", "--network", "none", "--name", "polite", "--stop-signal", "USR1", "--stop-timeout", "30",
                "--rootfs", rootfs, "sh", "-c", script))
    assert ok(dockyard("inspect", "-f", "{{.Config.StopSignal}} {{.Config.StopTimeout}}", "polite")) == "USR1 30\n"
    wait_until(lambda: "ready" in ok(dockyard("logs", "polite")), "the container's trap")
    ok(dockyard("stop", "polite"))
    assert "got-usr1" in ok(dockyard("logs", "polite"))
    assert ok(dockyard("inspect", "-f", "{{.State.ExitCode}}", "polite")) == "3\n"
    result = dockyard("run", "--network", "none", "--stop-signal", "SIGNOPE", "--rootfs", rootfs, "true")
    assert result.returncode == 125 and "invalid signal" in result.stderr
    assert failure_code(result) == 125


def test_logs_follow_ends_at_until_as_dockers_does(dockyard, rootfs, no_process_of):
    ok(dockyard("run", "-d", "--network", "none", "--name", "talker", "--rootfs", rootfs, "sh", "-c",
                "echo first; exec sleep 100"))
    wait_until(lambda: ok(dockyard("logs", "talker")) == "first\n", "its first line")
    assert ok(dockyard("logs", "-f", "--until", "0s", "talker", timeout=20)) == "first\n"  # returns: --until is now
    ok(dockyard("rm", "-f", "talker"))
