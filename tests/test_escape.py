"""Why chroot is not a jail: chapter 01 can reach the host, chapter 02 on cannot.

Each test plants a secret file on the host, outside the rootfs, and tries to
read it from inside the container by two classic routes. A test that the
escape fails first proves that its probe ran in a working container (the
probe's own output and exit code): an engine that runs nothing at all must
not pass as a safe one.
"""

import os
import shutil
import subprocess

import pytest

from conftest import needs_root, require_programs

pytestmark = needs_root
# Every process's /proc/PID/root is a door to the root it sees: try them all,
# and say how many were tried when none opened.
SEARCH_PROC = ("n=0; for p in /proc/[0-9]*; do n=$((n+1)); cat $p/root{secret} 2>/dev/null && exit 0; done; "
               "echo tried $n; exit 3")
PROBE_SOURCE = os.path.join(os.path.dirname(__file__), "probes", "chroot_escape.c")


@pytest.fixture
def secret(tmp_path) -> str:
    path = tmp_path / "host-secret"
    path.write_text("the host's secret\n")
    return str(path)


@pytest.fixture(scope="session")
def escape_probe(tmp_path_factory) -> str:
    """A static binary of probes/chroot_escape.c (needs gcc and libc6-dev)."""
    require_programs("gcc")
    binary = str(tmp_path_factory.mktemp("probe") / "chroot_escape")
    subprocess.run(["gcc", "-static", "-O1", "-o", binary, PROBE_SOURCE], check=True)
    return binary


def run_probe(dockyard, rootfs: str, probe: str, secret: str):
    shutil.copy(probe, os.path.join(rootfs, "bin", "escape"))
    return dockyard("run", "--rootfs", rootfs, "/bin/escape", secret)


def test_a_chroot_container_reads_host_files_through_another_process_root(dockyard, rootfs, secret):
    result = dockyard("run", "--rootfs", rootfs, "sh", "-c", SEARCH_PROC.format(secret=secret))
    assert result.stdout == "the host's secret\n"


def test_a_container_cannot_read_host_files_through_another_process_root(dockyard, rootfs, secret):
    result = dockyard("run", "--rootfs", rootfs, "sh", "-c", SEARCH_PROC.format(secret=secret))
    assert result.returncode == 3, result.stderr  # the search ran to its end inside the container
    tried = result.stdout.split()
    assert tried[0] == "tried" and int(tried[1]) >= 1, result.stdout  # ... and found nothing


def test_a_chroot_container_escapes_with_the_chroot_chdir_trick(dockyard, rootfs, secret, escape_probe):
    result = run_probe(dockyard, rootfs, escape_probe, secret)
    assert result.stdout == "the host's secret\n", result.stderr


def test_a_container_cannot_escape_with_the_chroot_chdir_trick(dockyard, rootfs, secret, escape_probe):
    result = run_probe(dockyard, rootfs, escape_probe, secret)
    assert "secret" not in result.stdout
    # The probe ran: it either chrooted twice and could not open the host path
    # (exit 1), or was not allowed to chroot at all (exit 3), and said so itself.
    assert (result.returncode, result.stderr.splitlines()[-1:]) in [
        (1, [f"{secret}: No such file or directory"]), (3, ["chroot: Operation not permitted"])], result.stderr
