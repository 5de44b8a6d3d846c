"""Chapter 04 on: a container writes into a layer of its own, never into its rootfs.

Every test runs on both storage drivers: overlay (the default) and vfs (copies).
"""

import hashlib
import os
import subprocess

import pytest

from conftest import needs_root, require_idmapped_mounts, skip_where_the_kernel_refuses_user_namespaces, failure_code

pytestmark = needs_root
DRIVERS = ("overlay", "vfs")


@pytest.fixture(params=DRIVERS)
def driver(request) -> str:
    return request.param


def run(dockyard, driver: str, *args: str, **kwargs) -> subprocess.CompletedProcess:
    """`run ARGS` on the given storage driver."""
    return dockyard("--storage-driver", driver, "run", *args, **kwargs)


def run_ok(dockyard, driver: str, *args: str) -> str:
    if driver == "overlay" and "--userns" in args:
        # Some kernels and filesystems (the initramfs of tools/v2vm.sh, say) cannot
        # idmap the layers for --userns: the test asks the kernel, not the engine.
        require_idmapped_mounts(dockyard.root.rsplit("/", 1)[0])
    result = run(dockyard, driver, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def fingerprint(tree: str) -> dict[str, str]:
    """Every path under `tree` with its type, mode and content (or link target)."""
    found = {}
    for directory, dirs, files in os.walk(tree):
        for name in dirs + files:
            path = os.path.join(directory, name)
            st = os.lstat(path)
            if os.path.islink(path):
                what = "link " + os.readlink(path)
            elif os.path.isfile(path):
                with open(path, "rb") as f:
                    what = hashlib.sha256(f.read()).hexdigest()
            else:
                what = "dir"
            found[os.path.relpath(path, tree)] = f"{st.st_mode:o} {st.st_uid} {what}"
    return found


CHANGES = "echo new > /added; mkdir -p /srv/new/deep; echo more >> /etc/passwd; rm /bin/ls; rm -rf /root"


def test_writes_deletes_and_changes_inside_never_reach_the_rootfs(dockyard, rootfs, driver):
    before = fingerprint(rootfs)
    run_ok(dockyard, driver, "--rootfs", rootfs, "sh", "-c", CHANGES + "; chmod 700 /etc; touch /tmp/x")
    assert fingerprint(rootfs) == before


def test_a_deleted_lower_file_is_gone_inside_and_still_in_the_rootfs(dockyard, rootfs, driver):
    out = run_ok(dockyard, driver, "--rootfs", rootfs, "sh", "-c", "rm /etc/group; ls /etc/group || echo gone")
    assert "gone" in out
    assert os.path.exists(os.path.join(rootfs, "etc/group"))


def test_two_containers_of_one_rootfs_do_not_see_each_others_changes(dockyard, rootfs, driver):
    run_ok(dockyard, driver, "--name", "first", "--rootfs", rootfs, "sh", "-c", "echo mine > /tmp/note; rm /bin/cat")
    out = run_ok(dockyard, driver, "--name", "second", "--rootfs", rootfs, "sh", "-c",
                 "ls /tmp/note 2>&1 || true; cat /etc/group >/dev/null && echo cat-works")
    assert "No such file" in out and "cat-works" in out


def diff(dockyard, name: str) -> list[str]:
    result = dockyard("diff", name)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_diff_lists_exactly_what_the_container_added_changed_and_deleted(dockyard, rootfs, driver):
    run_ok(dockyard, driver, "--name", "ctr", "--rootfs", rootfs, "sh", "-c", CHANGES)
    assert diff(dockyard, "ctr") == ["A /added", "C /bin", "D /bin/ls", "C /etc", "C /etc/passwd",
                                   "D /root", "A /srv", "A /srv/new", "A /srv/new/deep"]


def test_a_directory_removed_and_made_again_hides_everything_it_held_below(dockyard, rootfs, driver):
    os.makedirs(os.path.join(rootfs, "srv/data"))
    for name in ("a", "b"):
        with open(os.path.join(rootfs, "srv/data", name), "w") as f:
            f.write(name)
    out = run_ok(dockyard, driver, "--name", "ctr", "--rootfs", rootfs, "sh", "-c",
                 "rm -rf /srv/data; mkdir /srv/data; touch /srv/data/c; ls /srv/data")
    assert out.split() == ["c"]
    assert diff(dockyard, "ctr") == ["C /srv", "C /srv/data", "D /srv/data/a", "D /srv/data/b", "A /srv/data/c"]


def test_a_container_that_changed_nothing_has_an_empty_diff(dockyard, rootfs, driver):
    run_ok(dockyard, driver, "--name", "ctr", "--rootfs", rootfs, "cat", "/etc/hostname", "/etc/hosts")
    assert diff(dockyard, "ctr") == []


def test_the_layer_mount_never_appears_on_the_hosts_mount_table(dockyard, rootfs, driver):
    engine = dockyard.popen("--storage-driver", driver, "run", "-i", "--rm", "--rootfs", rootfs,
                            "sh", "-c", "echo ready; read line", stdin=subprocess.PIPE)
    try:
        assert engine.stdout.readline() == "ready\n"
        with open("/proc/self/mountinfo") as f:
            assert dockyard.root not in f.read()
    finally:
        engine.communicate("done\n", timeout=20)


def test_info_shows_the_storage_driver(dockyard, driver):
    result = dockyard("--storage-driver", driver, "info")
    assert f"Storage Driver: {driver}" in result.stdout


def test_a_container_keeps_the_storage_driver_it_was_made_with(dockyard, rootfs, driver):
    other = "vfs" if driver == "overlay" else "overlay"
    run_ok(dockyard, driver, "--name", "ctr", "--rootfs", rootfs, "sh", "-c", "echo x > /added")
    assert dockyard("--storage-driver", other, "diff", "ctr").stdout == "A /added\n"
    result = dockyard("--storage-driver", other, "start", "-a", "ctr")
    assert result.returncode == 0, result.stderr


def test_an_unknown_storage_driver_is_refused_with_exit_125(dockyard, rootfs):
    result = dockyard("--storage-driver", "zfs", "run", "--rootfs", rootfs, "true")
    assert result.returncode == failure_code(result) and "hint:" in result.stderr


def test_a_rootless_container_writes_into_its_own_layer_only(nobody, driver):
    before = fingerprint(nobody.rootfs)
    result = nobody("--storage-driver", driver, "run", "--name", "ctr", "--rootfs", nobody.rootfs,
                    "sh", "-c", "echo hi > /etc/motd; rm -rf /root; mkdir /root; rm /bin/ls")
    assert result.returncode == 0, result.stderr
    assert fingerprint(nobody.rootfs) == before
    assert nobody("diff", "ctr").stdout.split("\n")[:-1] == ["C /bin", "D /bin/ls", "C /etc", "A /etc/motd", "C /root"]
    assert nobody("rm", "ctr").returncode == 0


# --- root with --userns: the rootfs is host root's, the container's layer the range's ----
# overlay sees the rootfs through an idmapped mount; vfs shifts the owners of its
# copy into the range: either way the files of host root are root's inside.

def test_root_with_userns_can_write_tmp_in_its_own_layer(dockyard, rootfs, driver):
    before = fingerprint(rootfs)
    run_ok(dockyard, driver, "--userns", "--name", "ctr", "--rootfs", rootfs, "sh", "-c", "echo x > /tmp/f")
    assert fingerprint(rootfs) == before
    assert diff(dockyard, "ctr") == ["C /tmp", "A /tmp/f"]


def test_root_with_userns_can_change_etc_passwd_in_its_own_layer(dockyard, rootfs, driver):
    before = fingerprint(rootfs)
    out = run_ok(dockyard, driver, "--userns", "--name", "ctr", "--rootfs", rootfs, "sh", "-c",
                 "echo me:x:1:1::/:/bin/sh >> /etc/passwd && tail -n 1 /etc/passwd")
    assert out == "me:x:1:1::/:/bin/sh\n"
    assert fingerprint(rootfs) == before
    assert diff(dockyard, "ctr") == ["C /etc", "C /etc/passwd"]


def test_root_with_userns_sees_the_files_of_host_root_as_its_own(dockyard, rootfs, driver):
    out = run_ok(dockyard, driver, "--userns", "--rootfs", rootfs, "stat", "-c", "%u:%g", "/etc/passwd", "/bin")
    assert out.split() == ["0:0", "0:0"]


def test_root_with_userns_sees_other_owners_and_setuid_bits_as_in_the_rootfs(dockyard, rootfs, driver):
    for name, mode, owner in (("suid", 0o4755, 0), ("sgid", 0o2755, 7), ("mine", 0o644, 1000)):
        path = os.path.join(rootfs, "srv", name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w"):
            pass
        os.chown(path, owner, owner)
        os.chmod(path, mode)  # after chown, which clears setuid and setgid
    out = run_ok(dockyard, driver, "--userns", "--name", "ctr", "--rootfs", rootfs,
                 "stat", "-c", "%n %a %u:%g", "/srv/suid", "/srv/sgid", "/srv/mine")
    assert out.splitlines() == ["/srv/suid 4755 0:0", "/srv/sgid 2755 7:7", "/srv/mine 644 1000:1000"]
    assert diff(dockyard, "ctr") == []


def test_files_that_root_with_userns_makes_belong_to_the_range_on_the_host(dockyard, rootfs):
    run_ok(dockyard, "overlay", "--userns", "--rootfs", rootfs, "sh", "-c", "echo x > /tmp/f; echo y >> /etc/group")
    [container] = os.listdir(os.path.join(dockyard.root, "containers"))
    upper = os.path.join(dockyard.root, "containers", container, "upper")
    for path in ("tmp/f", "etc/group", "tmp", "etc"):
        st = os.lstat(os.path.join(upper, path))
        assert (st.st_uid, st.st_gid) == (100000, 100000), path


def test_userns_on_a_filesystem_that_cannot_be_idmapped_copies_the_layers_and_says_why(dockyard, busybox_rootfs,
                                                                                       tmp_path):
    # ramfs can never be idmapped: the engine runs in a mount namespace of its own with a ramfs at
    # `place`, holding the rootfs and the state, so the mount goes away with it. The run that worked
    # before chapter 4 still works: the layers are copied with the range's owners (vfs), and a warning
    # names the filesystem.
    skip_where_the_kernel_refuses_user_namespaces()
    place = tmp_path / "ramfs"
    place.mkdir()
    script = ('mount -t ramfs ramfs "$0" && cp -a "$1" "$0/rootfs" && shift 2 && '
              'exec "$@" run --rm --userns --network none --rootfs "$PLACE/rootfs" '
              'sh -c "echo x > /tmp/f && cat /tmp/f && stat -c %u /bin"')
    engine = [arg if arg != dockyard.root else str(place / "state") for arg in dockyard.command()]
    result = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, str(place),
                             busybox_rootfs, "-", *engine], capture_output=True, text=True, timeout=120,
                            env={**dockyard.impl.env(), "PLACE": str(place)}, cwd=os.path.dirname(dockyard.impl.path))
    assert (result.returncode, result.stdout) == (0, "x\n0\n"), result.stderr
    assert f"{place}/rootfs is on ramfs" in result.stderr and "--storage-driver vfs" in result.stderr
