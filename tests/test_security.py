"""Root in a container is not root on the host: capabilities, no_new_privs, seccomp.

Each test looks from inside a busybox container, with /proc/self/status or with
probes/syscalls.c (a static binary that makes the calls busybox cannot), and
checks both sides: the default denies, and the flag that should undo exactly
one protection undoes that one and no other.
"""

import json
import os
import platform
import shutil
import subprocess

import pytest

from conftest import needs_root, failure_code

pytestmark = needs_root
PROBE_SOURCE = os.path.join(os.path.dirname(__file__), "probes", "syscalls.c")
RUN = ("run", "--rm", "--network", "none")  # no bridge: these tests need no network (nor iptables)
STATUS = "grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/self/status"
DOCKER_DEFAULT_CAPS = 0xA80425FB   # CHOWN ... SETFCAP: Docker's 14
CAP_SYS_ADMIN, CAP_CHOWN, CAP_SYS_TIME = 21, 0, 25
# Calls that only the seccomp filter stops: no capability guards them.
FILTER_ONLY = ["clone_newuser", "unshare_user", "personality_bsd", "io_uring_setup", "vsock", "keyctl"]
# Calls that need CAP_SYS_ADMIN, which the filter also denies without it.
SYS_ADMIN_CALLS = ["clone_newns", "unshare_ns", "mount", "sethostname"]
OTHER_DENIED = ["clock_settime", "bpf", "perf_event_open", "syslog", "kexec_load", "init_module",
                "open_by_handle_at", "setns"]
ALLOWED = ["getpid", "fork", "chroot", "personality_query"]
X86_ONLY = ["x32_getpid", "i386_getpid"] if platform.machine() == "x86_64" else []


@pytest.fixture(scope="session")
def probe(tmp_path_factory) -> str:
    """A static binary of probes/syscalls.c (needs gcc and libc6-dev)."""
    if not shutil.which("gcc"):
        pytest.fail("gcc is needed to build the syscall probe: sudo apt-get install gcc libc6-dev")
    binary = str(tmp_path_factory.mktemp("probe") / "sysprobe")
    subprocess.run(["gcc", "-static", "-O1", "-o", binary, PROBE_SOURCE], check=True)
    return binary


@pytest.fixture
def probe_rootfs(rootfs, probe) -> str:
    shutil.copy(probe, os.path.join(rootfs, "bin", "sysprobe"))
    return rootfs


def calls(dockyard, rootfs: str, *flags: str, names: list[str]) -> dict[str, str]:
    """name -> OK or the errno name, as the probe saw each call inside a container run with `flags`."""
    result = dockyard(*RUN, *flags, "--rootfs", rootfs, "sysprobe", *names)
    assert result.returncode == 0, result.stderr
    return dict(line.split("=") for line in result.stdout.split())


def status(dockyard, rootfs: str, *flags: str) -> dict[str, str]:
    result = dockyard(*RUN, *flags, "--rootfs", rootfs, "sh", "-c", STATUS)
    assert result.returncode == 0, result.stderr
    return dict(line.split(":\t") for line in result.stdout.splitlines())


def caps(line: str) -> int:
    return int(line, 16)


# --- the default profile -------------------------------------------------------------

def test_root_in_a_container_holds_dockers_14_capabilities_no_new_privs_and_a_filter(dockyard, rootfs):
    s = status(dockyard, rootfs)
    assert caps(s["CapEff"]) == caps(s["CapPrm"]) == caps(s["CapBnd"]) == DOCKER_DEFAULT_CAPS
    assert caps(s["CapInh"]) == caps(s["CapAmb"]) == 0
    assert s["NoNewPrivs"] == "1"
    assert s["Seccomp"] == "2"  # SECCOMP_MODE_FILTER


def test_a_non_root_user_has_no_effective_or_permitted_capabilities(dockyard, rootfs):
    os.chmod(rootfs, 0o755)  # pytest's directories are root's alone; "/" must be open to nobody
    s = status(dockyard, rootfs, "-u", "nobody")
    assert caps(s["CapEff"]) == caps(s["CapPrm"]) == 0
    assert caps(s["CapBnd"]) == DOCKER_DEFAULT_CAPS
    assert s["NoNewPrivs"] == "1" and s["Seccomp"] == "2"


def test_every_denied_syscall_fails_with_eperm_and_clone3_with_enosys(dockyard, probe_rootfs):
    denied = FILTER_ONLY + SYS_ADMIN_CALLS + OTHER_DENIED + X86_ONLY
    seen = calls(dockyard, probe_rootfs, names=denied + ["clone3"] + ALLOWED)
    assert {name: seen[name] for name in denied} == {name: "EPERM" for name in denied}
    assert seen["clone3"] == "ENOSYS"  # so that libc falls back to clone, whose flags the filter reads
    assert {name: seen[name] for name in ALLOWED} == {name: "OK" for name in ALLOWED}


def test_without_the_filter_the_calls_it_alone_denies_go_through(dockyard, probe_rootfs):
    seen = calls(dockyard, probe_rootfs, "--security-opt", "seccomp=unconfined",
                 names=FILTER_ONLY + X86_ONLY + ["clone3"])
    assert all(seen[name] != "EPERM" for name in seen), seen
    assert seen["clone3"] == "OK"
    s = status(dockyard, probe_rootfs, "--security-opt", "seccomp=unconfined")
    assert s["Seccomp"] == "0" and caps(s["CapEff"]) == DOCKER_DEFAULT_CAPS  # capabilities stay


def test_changing_the_hostname_mounting_and_reading_the_kernel_log_are_refused(dockyard, rootfs):
    result = dockyard(*RUN, "--rootfs", rootfs, "sh", "-c",
                      "hostname evil || echo no-hostname; mount -t tmpfs x /tmp || echo no-mount; "
                      "dmesg >/dev/null || echo no-dmesg; unshare -U true || echo no-unshare")
    assert result.stdout.split() == ["no-hostname", "no-mount", "no-dmesg", "no-unshare"]


# --- flags that give back exactly one thing ----------------------------------------------

def test_cap_add_sys_admin_adds_that_bit_and_the_calls_it_gates_but_nothing_else(dockyard, probe_rootfs):
    s = status(dockyard, probe_rootfs, "--cap-add", "SYS_ADMIN")
    assert caps(s["CapEff"]) == caps(s["CapBnd"]) == DOCKER_DEFAULT_CAPS | 1 << CAP_SYS_ADMIN
    seen = calls(dockyard, probe_rootfs, "--cap-add", "CAP_SYS_ADMIN", names=SYS_ADMIN_CALLS + ["clone3"] + X86_ONLY
                 + ["io_uring_setup", "vsock", "keyctl", "personality_bsd", "clock_settime"])
    assert {seen[name] for name in SYS_ADMIN_CALLS + ["clone3"]} == {"OK"}
    assert {seen[name] for name in X86_ONLY + ["io_uring_setup", "vsock", "keyctl", "personality_bsd",
                                                "clock_settime"]} == {"EPERM"}


def test_cap_add_sys_time_lets_clock_settime_reach_the_kernel(dockyard, probe_rootfs):
    seen = calls(dockyard, probe_rootfs, "--cap-add", "sys_time", names=["clock_settime", "mount"])
    assert seen == {"clock_settime": "EINVAL", "mount": "EPERM"}  # EINVAL: the monotonic clock cannot be set


def test_with_cap_add_sys_admin_the_hostname_changes_inside_and_not_on_the_host(dockyard, rootfs):
    before = subprocess.run(["hostname"], capture_output=True, text=True).stdout
    result = dockyard(*RUN, "--cap-add", "SYS_ADMIN", "--hostname", "box", "--rootfs", rootfs,
                      "sh", "-c", "hostname changed && hostname")
    assert result.stdout == "changed\n", result.stderr
    assert subprocess.run(["hostname"], capture_output=True, text=True).stdout == before


def test_with_cap_add_sys_admin_a_mount_made_inside_stays_inside(dockyard, rootfs, tmp_path):
    result = dockyard(*RUN, "--cap-add", "SYS_ADMIN", "--rootfs", rootfs, "sh", "-c",
                      "mount -t tmpfs inside /tmp && grep -c ' /tmp ' /proc/self/mountinfo")
    assert result.stdout == "1\n", result.stderr
    with open("/proc/self/mountinfo") as f:
        assert str(tmp_path) not in f.read()


def test_a_rootless_container_changes_its_hostname_with_cap_add_and_never_the_hosts(nobody):
    before = subprocess.run(["hostname"], capture_output=True, text=True).stdout
    result = nobody("run", "--rm", "--rootfs", nobody.rootfs, "sh", "-c", "hostname mine || echo refused")
    assert result.stdout == "refused\n"
    result = nobody("run", "--rm", "--cap-add", "SYS_ADMIN", "--rootfs", nobody.rootfs, "sh", "-c",
                    "hostname mine && hostname")
    assert result.stdout == "mine\n", result.stderr
    assert subprocess.run(["hostname"], capture_output=True, text=True).stdout == before


def test_cap_drop_removes_one_capability_and_all_removes_every_one(dockyard, rootfs):
    assert caps(status(dockyard, rootfs, "--cap-drop", "chown")["CapEff"]) == DOCKER_DEFAULT_CAPS & ~1
    s = status(dockyard, rootfs, "--cap-drop", "ALL")
    assert caps(s["CapEff"]) == caps(s["CapBnd"]) == 0
    s = status(dockyard, rootfs, "--cap-drop", "ALL", "--cap-add", "CAP_CHOWN")
    assert caps(s["CapEff"]) == caps(s["CapBnd"]) == 1 << CAP_CHOWN
    result = dockyard(*RUN, "--cap-drop", "CHOWN", "--rootfs", rootfs, "sh", "-c",
                      "touch /tmp/f && chown nobody /tmp/f")
    assert result.returncode != 0 and "Operation not permitted" in result.stderr


def test_privileged_gives_every_capability_and_no_filter(dockyard, probe_rootfs):
    s = status(dockyard, probe_rootfs, "--privileged")
    with open("/proc/self/status") as f:
        ours = dict(line.rstrip("\n").split(":\t") for line in f if line.startswith("CapBnd"))
    assert caps(s["CapEff"]) == caps(s["CapBnd"]) == caps(ours["CapBnd"])
    assert s["Seccomp"] == "0"
    seen = calls(dockyard, probe_rootfs, "--privileged", names=FILTER_ONLY + SYS_ADMIN_CALLS)
    assert set(seen.values()) == {"OK"}


def test_an_unknown_capability_is_refused_with_a_hint(dockyard, rootfs):
    result = dockyard(*RUN, "--cap-add", "FLY", "--rootfs", rootfs, "true")
    assert result.returncode == failure_code(result)
    assert "error: unknown capability: 'FLY'" in result.stderr and "hint:" in result.stderr


# --- no_new_privs ----------------------------------------------------------------------

def setuid_probe(rootfs: str, probe: str) -> None:
    """A setuid-root copy of the probe that prints its effective uid."""
    shutil.copy(probe, os.path.join(rootfs, "bin", "suid"))
    os.chown(os.path.join(rootfs, "bin", "suid"), 0, 0)
    os.chmod(os.path.join(rootfs, "bin", "suid"), 0o4755)


def test_no_new_privs_makes_a_setuid_binary_gain_nothing(dockyard, probe_rootfs, probe):
    setuid_probe(probe_rootfs, probe)
    os.chmod(probe_rootfs, 0o755)
    result = dockyard(*RUN, "-u", "nobody", "--rootfs", probe_rootfs, "/bin/suid", "euid")
    assert "euid=65534" in result.stdout, result.stdout + result.stderr
    result = dockyard(*RUN, "-u", "nobody", "--security-opt", "no-new-privileges=false",
                      "--rootfs", probe_rootfs, "/bin/suid", "euid")
    assert "euid=0" in result.stdout, result.stdout + result.stderr
    s = status(dockyard, probe_rootfs, "--security-opt", "no-new-privileges=false")
    assert s["NoNewPrivs"] == "0" and s["Seccomp"] == "2"


# --- Docker's JSON profiles --------------------------------------------------------------

def test_a_docker_format_profile_file_replaces_the_default(dockyard, rootfs, tmp_path):
    profile = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                            {"names": ["chmod", "fchmodat", "fchmodat2"], "action": "SCMP_ACT_ERRNO",
                             "excludes": {"caps": ["CAP_SYS_ADMIN"]}}]}
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(profile))
    result = dockyard(*RUN, "--security-opt", f"seccomp={path}", "--rootfs", rootfs, "sh", "-c",
                      "mkdir /tmp/d || echo no-mkdir; chmod 600 /etc/group || echo no-chmod; hostname x || echo no-host")
    assert result.stdout.split() == ["no-mkdir", "no-chmod", "no-host"]  # hostname: CAP_SYS_ADMIN still missing
    assert "Permission denied" in result.stderr  # errnoRet 13 (EACCES), not EPERM
    result = dockyard(*RUN, "--cap-add", "SYS_ADMIN", "--security-opt", f"seccomp={path}",
                      "--rootfs", rootfs, "sh", "-c", "chmod 600 /etc/group && echo chmod")
    assert result.stdout == "chmod\n"  # the excludes rule dropped out


def test_an_unreadable_or_invalid_profile_is_refused_with_a_hint(dockyard, rootfs, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"defaultAction": "SCMP_ACT_DANCE"}')
    for path in (bad, tmp_path / "missing.json"):
        result = dockyard(*RUN, "--security-opt", f"seccomp={path}", "--rootfs", rootfs, "true")
        assert result.returncode == failure_code(result)
        assert "error: cannot use seccomp profile" in result.stderr and "hint:" in result.stderr


# --- every way in gets the same profile ---------------------------------------------------

def test_a_build_run_step_gets_the_same_profile_as_run(dockyard, busybox_image, rootfs, tmp_path):
    (tmp_path / "Dockerfile").write_text(f"FROM {busybox_image}\nRUN {STATUS} > /status\n")
    result = dockyard("build", "-t", "probe:1", str(tmp_path), timeout=120)
    assert result.returncode == 0, result.stderr
    built = dockyard(*RUN, "--security-opt", "seccomp=unconfined", "probe:1", "cat", "/status")
    ran = dockyard(*RUN, busybox_image, "sh", "-c", STATUS)
    assert built.stdout == ran.stdout and "Seccomp:\t2" in ran.stdout


def test_init_runs_the_command_with_the_same_profile(dockyard, rootfs):
    plain = status(dockyard, rootfs)
    assert status(dockyard, rootfs, "--init") == plain


def test_a_rootless_container_gets_the_same_capabilities_and_filter(nobody):
    result = nobody("run", "--rm", "--rootfs", nobody.rootfs, "sh", "-c", STATUS)
    assert result.returncode == 0, result.stderr
    s = dict(line.split(":\t") for line in result.stdout.splitlines())
    assert caps(s["CapEff"]) == caps(s["CapBnd"]) == DOCKER_DEFAULT_CAPS
    assert s["NoNewPrivs"] == "1" and s["Seccomp"] == "2"


def test_exec_gets_the_containers_own_profile(dockyard, rootfs):
    os.chmod(rootfs, 0o755)
    flags = ("--cap-drop", "CHOWN", "--cap-add", "NET_ADMIN")
    plain = status(dockyard, rootfs, *flags)
    engine = dockyard.popen("run", "--name", "sec", *flags, "--rootfs", rootfs, "sh", "-c", "echo ready; exec sleep 1000",
                            stdin=subprocess.DEVNULL)
    try:
        assert engine.stdout.readline() == "ready\n", engine.stderr.read()
        result = dockyard("exec", "sec", "sh", "-c", STATUS)
        assert result.returncode == 0, result.stderr
        assert dict(line.split(":\t") for line in result.stdout.splitlines()) == plain
        as_nobody = dockyard("exec", "-u", "nobody", "sec", "sh", "-c", STATUS)
        s = dict(line.split(":\t") for line in as_nobody.stdout.splitlines())
        assert caps(s["CapEff"]) == 0 and s["CapBnd"] == plain["CapBnd"] and s["Seccomp"] == "2"
    finally:
        dockyard("rm", "-f", "sec")
        engine.communicate(timeout=60)


# --- devices -----------------------------------------------------------------------------

def test_a_device_node_made_inside_cannot_be_opened_and_device_adds_one(dockyard, rootfs):
    # c 1:11 is /dev/kmsg: any root may open it write-only, so only the device rules stand in the way.
    made = dockyard(*RUN, "--rootfs", rootfs, "sh", "-c",
                    "mknod /dev/k c 1 11 && (exec 3>/dev/k) && echo opened; echo x >/dev/null && echo null-ok")
    assert made.stdout == "null-ok\n" and "Operation not permitted" in made.stderr
    given = dockyard(*RUN, "--device", "/dev/kmsg:/dev/mykmsg:w", "--rootfs", rootfs, "sh", "-c",
                     "(exec 3>/dev/mykmsg) && echo opened; (exec 3</dev/mykmsg) || echo not-readable")
    assert given.stdout == "opened\nnot-readable\n", given.stderr
    privileged = dockyard(*RUN, "--privileged", "--rootfs", rootfs, "sh", "-c",
                          "mknod /dev/k c 1 11 && (exec 3>/dev/k) && echo opened")
    assert privileged.stdout == "opened\n", privileged.stderr


def test_a_device_that_is_not_one_is_refused_with_a_hint(dockyard, rootfs):
    result = dockyard(*RUN, "--device", "/etc/passwd", "--rootfs", rootfs, "true")
    assert result.returncode == failure_code(result) and "error: cannot use device" in result.stderr and "hint:" in result.stderr


# --- masked paths, read-only root, tmpfs ------------------------------------------------

def test_host_files_in_proc_and_sys_are_masked_and_the_mask_cannot_be_lifted(dockyard, rootfs):
    result = dockyard(*RUN, "--rootfs", rootfs, "sh", "-c",
                      "wc -c < /proc/interrupts; ls /sys/firmware | wc -l; "
                      "umount /proc/interrupts || echo no-umount; echo 1 > /proc/sysrq-trigger || echo no-sysrq")
    assert result.stdout.split() == ["0", "0", "no-umount", "no-sysrq"], result.stderr
    with open("/proc/interrupts") as f:
        assert f.read()  # the host's own is not empty: the mask made it so inside
    privileged = dockyard(*RUN, "--privileged", "--rootfs", rootfs, "sh", "-c",
                          "wc -c < /proc/timer_list; grep ' /sys ' /proc/mounts | cut -d' ' -f4")
    size, sys_options = privileged.stdout.split()
    assert int(size) > 0 and sys_options.startswith("rw,"), privileged.stderr


def test_devpts_is_a_new_instance_owned_by_group_5(dockyard, rootfs):
    result = dockyard(*RUN, "--rootfs", rootfs, "sh", "-c", "grep ' /dev/pts ' /proc/mounts")
    assert "ptmxmode=666" in result.stdout, result.stdout
    assert "gid=5" in result.stdout and "mode=620" in result.stdout


def test_read_only_root_with_a_writable_tmpfs(dockyard, rootfs):
    result = dockyard(*RUN, "--read-only", "--tmpfs", "/run:size=1m,mode=755", "--rootfs", rootfs, "sh", "-c",
                      "touch /x || echo ro; touch /run/x && echo tmpfs; grep ' /run ' /proc/mounts")
    lines = result.stdout.splitlines()
    assert lines[:2] == ["ro", "tmpfs"], result.stderr
    assert "noexec" in lines[2] and "size=1024k" in lines[2] and "mode=755" in lines[2]
    assert not os.path.exists(os.path.join(rootfs, "run", "x"))


# --- kernel filesystems cannot be shadowed --------------------------------------------------

@pytest.mark.parametrize("path", ["/proc", "/sys/kernel", "/dev/shm"])
def test_an_images_volume_over_a_kernel_filesystem_is_refused(dockyard, busybox_rootfs, path):
    assert dockyard("import", "-c", f"VOLUME {path}", busybox_rootfs, "shadow:1").returncode == 0
    result = dockyard(*RUN, "shadow:1", "true")
    assert result.returncode == failure_code(result)
    assert f"error: the image declares VOLUME {path}" in result.stderr and "hint:" in result.stderr


def test_a_volume_under_proc_is_refused_but_one_under_dev_is_allowed(dockyard, rootfs, tmp_path):
    result = dockyard(*RUN, "-v", f"{tmp_path}:/proc/x", "--rootfs", rootfs, "true")
    assert result.returncode == failure_code(result) and "error: cannot mount a volume at /proc/x" in result.stderr
    (tmp_path / "hello").write_text("hi\n")
    result = dockyard(*RUN, "-v", f"{tmp_path}:/dev/data", "--rootfs", rootfs, "cat", "/dev/data/hello")
    assert result.stdout == "hi\n", result.stderr


# --- archives -------------------------------------------------------------------------------

def test_load_refuses_a_blob_that_is_a_link_to_a_host_file(dockyard, busybox_image, tmp_path):
    import tarfile
    saved = tmp_path / "saved.tar"
    assert dockyard("save", "-o", str(saved), busybox_image).returncode == 0
    host = tmp_path / "host-file"  # a host file whose digest matches the blob: only reading it would tell
    evil = tmp_path / "evil.tar"
    with tarfile.open(saved) as src, tarfile.open(evil, "w") as out:
        blobs = [m for m in src.getmembers() if m.name.startswith("blobs/sha256/") and m.isfile()]
        victim = max(blobs, key=lambda m: m.size).name  # the layer
        host.write_bytes(src.extractfile(victim).read())
        for member in src.getmembers():
            if member.name == victim:
                link = tarfile.TarInfo(member.name)
                link.type, link.linkname = tarfile.SYMTYPE, str(host)
                out.addfile(link)
            else:
                out.addfile(member, src.extractfile(member) if member.isfile() else None)
    other = dockyard.__class__(dockyard.impl, str(tmp_path / "other"))
    result = other("load", "-i", str(evil))
    assert result.returncode == failure_code(result), result.stdout + result.stderr
    assert "error:" in result.stderr and "hint:" in result.stderr
    assert other("images").stdout.count("\n") <= 1  # nothing entered the store


def unified_tree() -> str | None:
    """Where this machine mounts cgroup2: /sys/fs/cgroup (v2) or /sys/fs/cgroup/unified (hybrid)."""
    with open("/proc/self/mounts") as f:
        points = [line.split()[1] for line in f if line.split()[2] == "cgroup2"]
    return next(iter(sorted(points)), None)


def test_the_cgroup_v2_device_program_allows_the_rules_and_denies_the_rest(tmp_path):
    # On a hybrid host run uses the v1 controller, so the CLI cannot reach the v2 program: call it directly.
    import sys
    tree = unified_tree()
    if tree is None:
        pytest.skip("no cgroup2 tree on this machine")
    cgroup = os.path.join(tree, f"dockyard-devtest-{os.getpid()}")
    script = f"""
import os, sys
sys.path.insert(0, {os.path.dirname(os.path.dirname(os.path.abspath(__file__)))!r})
from final import devices, devices_bpf
devices_bpf.attach({cgroup!r}, [*devices.DEFAULT_RULES, "c 1:11 w"])
with open({cgroup!r} + "/cgroup.procs", "w") as f:
    f.write("0")
for path, flags in (("/dev/null", os.O_RDWR), ("/dev/kmsg", os.O_WRONLY), ("/dev/kmsg", os.O_RDONLY)):
    try:
        os.close(os.open(path, flags))
        print("ok")
    except OSError as err:
        print(err.strerror)
"""
    os.mkdir(cgroup)
    try:
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    finally:
        os.rmdir(cgroup)
    assert result.stdout.splitlines() == ["ok", "ok", "Operation not permitted"], result.stderr


def add_layer_to_saved_image(saved, out, layer: bytes) -> None:
    """Rewrite an OCI archive from `save` with one more (uncompressed) layer on its image."""
    import hashlib
    import io
    import tarfile
    def sha(data: bytes) -> str:
        return "sha256:" + hashlib.sha256(data).hexdigest()
    with tarfile.open(saved) as src:
        files = {m.name: src.extractfile(m).read() for m in src.getmembers() if m.isfile()}
    index = json.loads(files["index.json"])
    manifest = json.loads(files["blobs/sha256/" + index["manifests"][0]["digest"].split(":")[1]])
    config = json.loads(files["blobs/sha256/" + manifest["config"]["digest"].split(":")[1]])
    config["rootfs"]["diff_ids"].append(sha(layer))
    config.setdefault("history", []).append({"created_by": "a layer that hardlinks to a lower one"})
    config_bytes = json.dumps(config).encode()
    manifest["config"] = {**manifest["config"], "digest": sha(config_bytes), "size": len(config_bytes)}
    manifest["layers"].append({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha(layer),
                               "size": len(layer)})
    manifest_bytes = json.dumps(manifest).encode()
    index["manifests"][0] = {**index["manifests"][0], "digest": sha(manifest_bytes), "size": len(manifest_bytes)}
    for data in (layer, config_bytes, manifest_bytes):
        files["blobs/sha256/" + sha(data).split(":")[1]] = data
    files["index.json"] = json.dumps(index).encode()
    with tarfile.open(out, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_a_layer_that_hardlinks_to_a_lower_layers_file_loads_and_writes_stay_in_one_container(
        dockyard, busybox_image, tmp_path):
    import io
    import tarfile
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as layer:
        link = tarfile.TarInfo("etc/passwd-link")
        link.type, link.linkname = tarfile.LNKTYPE, "etc/passwd"  # etc/passwd is in the layer below
        layer.addfile(link)
    saved, linked = tmp_path / "saved.tar", tmp_path / "linked.tar"
    assert dockyard("save", "-o", str(saved), busybox_image).returncode == 0
    add_layer_to_saved_image(saved, linked, buffer.getvalue())
    assert dockyard("rmi", busybox_image).returncode == 0
    result = dockyard("load", "-i", str(linked))
    assert result.returncode == 0, result.stderr
    first = dockyard(*RUN, busybox_image, "sh", "-c",
                     "cmp /etc/passwd /etc/passwd-link && echo same; echo changed >> /etc/passwd-link")
    assert first.stdout == "same\n", first.stderr
    second = dockyard(*RUN, busybox_image, "sh", "-c", "cmp /etc/passwd /etc/passwd-link && echo same")
    assert second.stdout == "same\n", second.stderr


def test_with_t_the_pty_belongs_to_the_user_and_is_the_console(dockyard, rootfs):
    os.chmod(rootfs, 0o755)
    result = dockyard(*RUN, "-t", "-u", "nobody", "--rootfs", rootfs, "sh", "-c",
                      "stat -c '%u %g %t:%T' $(tty) /dev/console")
    tty, console = result.stdout.splitlines()
    assert tty.split()[:2] == ["65534", "5"], result.stdout + result.stderr
    assert tty.split()[2] == console.split()[2]  # the same device: /dev/console is the container's pty


def test_without_t_a_terminal_of_the_hosts_is_never_given_to_the_container(dockyard, rootfs):
    os.chmod(rootfs, 0o755)
    master, slave = os.openpty()  # the engine's stdin is a terminal of the host's, as in a shell
    try:
        before = os.fstat(slave)
        result = dockyard(*RUN, "-i", "-u", "nobody", "--rootfs", rootfs, "sh", "-c",
                          "test -e /dev/console || echo no-console", stdin=slave)
        assert result.stdout == "no-console\n", result.stderr
        after = os.fstat(slave)
        assert (after.st_uid, after.st_gid, after.st_mode) == (before.st_uid, before.st_gid, before.st_mode)
    finally:
        os.close(master)
        os.close(slave)
