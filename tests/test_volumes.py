"""Chapter 04 on: volumes bring host directories and named volumes into a container.

The mount tests run on both storage drivers: overlay (the default) and vfs.
"""

import json
import os
import subprocess

import pytest

from conftest import needs_root, require_idmapped_mounts, failure_code

pytestmark = needs_root


@pytest.fixture(params=["overlay", "vfs"])
def driver(request) -> str:
    return request.param


def run(dockyard, driver: str, *args: str) -> subprocess.CompletedProcess:
    return dockyard("--storage-driver", driver, "run", *args)


def run_ok(dockyard, driver: str, *args: str) -> str:
    if driver == "overlay" and "--userns" in args:
        require_idmapped_mounts(os.path.dirname(dockyard.root))  # as test_layers.py: ask the kernel
    result = run(dockyard, driver, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_host_directory_is_bound_in_and_writes_reach_the_host(dockyard, rootfs, driver, tmp_path):
    (tmp_path / "share").mkdir()
    (tmp_path / "share" / "from-host").write_text("hello\n")
    out = run_ok(dockyard, driver, "-v", f"{tmp_path}/share:/mnt/share", "--rootfs", rootfs,
                 "sh", "-c", "cat /mnt/share/from-host; echo back > /mnt/share/from-container")
    assert out == "hello\n"
    assert (tmp_path / "share" / "from-container").read_text() == "back\n"
    assert not os.path.exists(os.path.join(rootfs, "mnt/share"))  # made in the container's layer only


def test_a_host_file_can_be_bound_over_a_file(dockyard, rootfs, driver, tmp_path):
    (tmp_path / "motd").write_text("from the host\n")
    out = run_ok(dockyard, driver, "-v", f"{tmp_path}/motd:/etc/motd:ro", "--rootfs", rootfs, "cat", "/etc/motd")
    assert out == "from the host\n"


def test_a_read_only_volume_refuses_writes(dockyard, rootfs, driver, tmp_path):
    (tmp_path / "share").mkdir()
    result = run(dockyard, driver, "-v", f"{tmp_path}/share:/data:ro", "--rootfs", rootfs,
                 "sh", "-c", "ls /data && touch /data/x")
    assert result.returncode != 0 and "Read-only file system" in result.stderr
    assert os.listdir(tmp_path / "share") == []


def test_a_named_volume_keeps_its_data_after_its_container_is_removed(dockyard, rootfs, driver):
    run_ok(dockyard, driver, "--rm", "-v", "keep:/data", "--rootfs", rootfs, "sh", "-c", "echo kept > /data/file")
    assert run_ok(dockyard, driver, "--rm", "-v", "keep:/srv", "--rootfs", rootfs, "cat", "/srv/file") == "kept\n"
    assert dockyard("volume", "ls", "-q").stdout.split() == ["keep"]


@pytest.mark.parametrize("target", ["/etc", "../../../../../../etc"])
def test_a_destination_that_is_a_symlink_out_of_the_rootfs_stays_inside_it(dockyard, rootfs, driver, tmp_path,
                                                                         target):
    os.symlink(target, os.path.join(rootfs, "data"))
    (tmp_path / "share").mkdir()
    (tmp_path / "share" / "marker").write_text("volume\n")
    host_etc = set(os.listdir("/etc"))
    result = run(dockyard, driver, "-v", f"{tmp_path}/share:/data", "--rootfs", rootfs, "ls", "/etc")
    if result.returncode == 0:  # confined: the symlink resolved inside the rootfs, to its own /etc
        assert result.stdout.split() == ["marker"]
    else:
        assert result.returncode == failure_code(result) and "hint:" in result.stderr
    assert set(os.listdir("/etc")) == host_etc and not os.path.exists("/etc/marker")
    assert set(os.listdir(os.path.join(rootfs, "etc"))) == {"passwd", "group"}


@pytest.mark.parametrize("spec, words", [
    ("no-colon", "invalid volume specification"),
    ("relative/dir:/data", "neither an absolute host path nor a volume name"),
    ("/no/such/host/dir:/data", "does not exist"),
    ("/tmp:relative", "invalid volume destination"),
    ("/tmp:/data:rx", "invalid volume specification"),
])
def test_a_bad_volume_is_refused_with_a_hint_and_creates_nothing(dockyard, rootfs, spec, words):
    result = dockyard("run", "-v", spec, "--rootfs", rootfs, "true")
    assert result.returncode == failure_code(result) and words in result.stderr and "hint:" in result.stderr
    assert not os.path.isdir(os.path.join(dockyard.root, "containers")) or \
        os.listdir(os.path.join(dockyard.root, "containers")) == []


def test_volume_create_ls_inspect_and_rm_round_trip(dockyard):
    assert dockyard("volume", "create", "data").stdout == "data\n"
    assert dockyard("volume", "ls").stdout.splitlines() == ["DRIVER    VOLUME NAME", "local     data"]
    [info] = json.loads(dockyard("volume", "inspect", "data").stdout)
    assert info["Name"] == "data" and info["Driver"] == "local" and os.path.isdir(info["Mountpoint"])
    assert dockyard("volume", "rm", "data").stdout == "data\n"
    assert dockyard("volume", "ls", "-q").stdout == ""
    result = dockyard("volume", "inspect", "data")
    assert result.returncode == failure_code(result) and "hint:" in result.stderr


def test_a_volume_in_use_by_a_container_cannot_be_removed(dockyard, rootfs):
    assert dockyard("run", "--name", "user", "-v", "busy:/data", "--rootfs", rootfs, "true").returncode == 0
    result = dockyard("volume", "rm", "busy")
    assert result.returncode == failure_code(result) and "in use" in result.stderr and "hint:" in result.stderr
    assert dockyard("rm", "user").returncode == 0
    assert dockyard("volume", "rm", "busy").returncode == 0


def test_a_rootless_container_can_write_to_a_named_volume(nobody):
    for _ in range(2):
        result = nobody("run", "--rm", "-v", "mine:/data", "--rootfs", nobody.rootfs,
                        "sh", "-c", "echo x >> /data/log; cat /data/log")
        assert result.returncode == 0, result.stderr
    assert result.stdout == "x\nx\n"


def test_a_bare_path_is_an_anonymous_volume_that_run_rm_removes(dockyard, rootfs, driver):
    run_ok(dockyard, driver, "--rm", "-v", "/data", "-v", "named:/named", "--rootfs", rootfs, "touch", "/data/f")
    assert dockyard("volume", "ls", "-q").stdout.split() == ["named"]
    run_ok(dockyard, driver, "--name", "keeper", "-v", "/data", "--rootfs", rootfs, "touch", "/data/f")
    [anonymous] = set(dockyard("volume", "ls", "-q").stdout.split()) - {"named"}
    assert json.loads(dockyard("volume", "inspect", anonymous).stdout)[0]["Labels"] == \
        {"com.docker.volume.anonymous": ""}
    assert dockyard("rm", "keeper").returncode == 0


def test_a_new_volume_starts_with_a_copy_of_the_rootfs_files_at_its_path(dockyard, rootfs, driver, tmp_path):
    os.makedirs(os.path.join(rootfs, "srv", "empty"))
    os.symlink("/etc/passwd", os.path.join(rootfs, "srv", "link"))
    os.chmod(os.path.join(rootfs, "srv"), 0o751)
    out = run_ok(dockyard, driver, "--rm", "-v", "copied:/srv", "--rootfs", rootfs,
                 "sh", "-c", "ls -A /srv; readlink /srv/link; stat -c %a /srv")
    assert out == "empty\nlink\n/etc/passwd\n751\n"
    data = json.loads(dockyard("volume", "inspect", "copied").stdout)[0]["Mountpoint"]
    assert os.path.islink(os.path.join(data, "link"))  # copied as a link, never followed
    (tmp_path / "host").mkdir()
    run_ok(dockyard, driver, "--rm", "-v", f"{tmp_path}/host:/srv", "--rootfs", rootfs, "true")
    assert os.listdir(tmp_path / "host") == []  # a host path is never filled


@pytest.mark.parametrize("target", ["/etc", "../../../../../../etc"])
def test_a_volume_at_a_symlink_out_of_the_rootfs_is_filled_from_inside_it(dockyard, rootfs, target):
    os.symlink(target, os.path.join(rootfs, "data"))
    run_ok(dockyard, "overlay", "--rm", "-v", "filled:/data", "--rootfs", rootfs, "true")
    data = json.loads(dockyard("volume", "inspect", "filled").stdout)[0]["Mountpoint"]
    assert sorted(os.listdir(data)) == ["group", "passwd"]  # the rootfs's own /etc, not the host's


def test_a_volume_with_content_is_never_overwritten(dockyard, rootfs):
    assert dockyard("volume", "create", "full").returncode == 0
    data = json.loads(dockyard("volume", "inspect", "full").stdout)[0]["Mountpoint"]
    open(os.path.join(data, "mine"), "w").close()
    assert run_ok(dockyard, "overlay", "--rm", "-v", "full:/etc", "--rootfs", rootfs, "ls", "/etc") == "mine\n"


def test_a_volume_filled_for_a_user_namespace_belongs_to_its_root(dockyard, rootfs):
    out = run_ok(dockyard, "overlay", "--rm", "--userns", "-v", "mapped:/etc", "--rootfs", rootfs,
                 "sh", "-c", "stat -c %u /etc /etc/passwd; echo x >> /etc/passwd")
    assert out == "0\n0\n"


def test_the_long_volume_flag_binds_as_v_does_and_ro_is_read_only(dockyard, rootfs, driver, tmp_path):
    (tmp_path / "share").mkdir()
    (tmp_path / "share" / "from-host").write_text("hello\n")
    result = run(dockyard, driver, "--volume", f"{tmp_path}/share:/mnt/share:ro", "--rootfs", rootfs,
                 "sh", "-c", "cat /mnt/share/from-host; echo no > /mnt/share/written")
    assert result.returncode != 0 and result.stdout == "hello\n", result.stderr  # read in, refused to write
    assert "Read-only file system" in result.stderr
    assert os.listdir(tmp_path / "share") == ["from-host"]
