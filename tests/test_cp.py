"""final: `cp` copies files between a container and the host, and a hostile container cannot turn it on the host;
`export` writes a container's own filesystem as a tar.

The container plants the classic traps: `/escape -> /`, `/up -> ../../../../etc`,
and its own /etc/shadow. A copy through them must land in, or read from, the
container's own files. Stopped containers are tried on both storage drivers
(overlay is mounted detached for the copy, vfs is a plain copy); running ones
are reached through their PID 1's root.
"""

import io
import os
import signal
import subprocess
import tarfile

import pytest

from conftest import NOBODY, become_nobody, mounts, needs_root, require_idmapped_mounts, failure_code
from test_lifecycle import no_process_of  # noqa: F401  (a fixture: no monitor outlives the test)

pytestmark = needs_root

SETUP = ("test -e /ready || { echo hi > /tmp/f; ln -s / /escape; ln -s ../../../../etc /up; "
         "mkdir -p /d/sub /linkdir-target; ln -s /linkdir-target /linkdir; echo y > /d/sub/y; echo top > /d/top; "
         "echo shadow-inside > /etc/shadow; echo owned > /owned; chown 4321:4322 /owned; "
         "cp /bin/busybox /suid; chmod 4755 /suid; rm /bin/arch; ln -s /loop /loop; ln -s /proc/1/root /magic; "
         "touch /ready; }; test -f /probe.sh && sh /probe.sh; true")


@pytest.fixture(params=["overlay", "vfs"])
def stopped(request, dockyard, rootfs) -> str:
    """An exited container that planted the traps; its command runs /probe.sh, if there is one, at each start."""
    result = dockyard("--storage-driver", request.param, "run", "--network", "none", "--name", "box",
                      "--rootfs", rootfs, "sh", "-c", SETUP)
    assert result.returncode == 0, result.stderr
    return "box"


@pytest.fixture
def running(dockyard, rootfs, tmp_path):
    """A running container (in the foreground of an engine of ours) with the traps and a volume."""
    (tmp_path / "vol").mkdir()
    (tmp_path / "vol" / "in-volume").write_text("from the volume\n")
    engine = dockyard.popen("run", "--network", "none", "--name", "live", "-v", f"{tmp_path}/vol:/vol",
                            "--rootfs", rootfs, "sh", "-c", SETUP + "; echo ready; exec sleep 1000",
                            stdin=subprocess.DEVNULL)
    try:
        assert engine.stdout.readline() == "ready\n", engine.stderr.read()
        yield "live"
    finally:
        dockyard("rm", "-f", "live")
        engine.communicate(timeout=60)


def cp(dockyard, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess:
    command = dockyard.command("cp", *args)
    return subprocess.run(command, input=input, capture_output=True, cwd=os.path.dirname(dockyard.impl.path),
                          env=dockyard.impl.env(), timeout=60)


def cp_ok(dockyard, *args: str, input: bytes | None = None) -> bytes:
    result = cp(dockyard, *args, input=input)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


def probe(dockyard, box: str, script: str, tmp_path) -> str:
    """What `script` prints inside the stopped container `box` (copied in as /probe.sh, then a start)."""
    (tmp_path / "probe.sh").write_text(script)
    cp_ok(dockyard, str(tmp_path / "probe.sh"), f"{box}:/probe.sh")
    result = dockyard("start", "-a", box)
    assert result.returncode == 0, result.stderr
    return result.stdout


# --- out of a container --------------------------------------------------------------

def test_a_file_is_copied_out_of_a_stopped_container(dockyard, stopped, tmp_path):
    cp_ok(dockyard, f"{stopped}:/tmp/f", str(tmp_path / "f"))
    assert (tmp_path / "f").read_text() == "hi\n"
    cp_ok(dockyard, f"{stopped}:/tmp/f", str(tmp_path))  # into an existing directory: under its own name
    assert (tmp_path / "f").read_text() == "hi\n"
    cp_ok(dockyard, f"{stopped}:tmp/f", str(tmp_path / "rel"))  # a path inside is relative to its "/"
    assert (tmp_path / "rel").read_text() == "hi\n"


def test_on_a_terminal_cp_says_how_much_it_copied_unless_q(dockyard, stopped, tmp_path):
    def stderr_on_a_terminal(*args: str) -> bytes:
        master, slave = os.openpty()
        try:
            subprocess.run(dockyard.command("cp", *args), stderr=slave, stdout=subprocess.DEVNULL, timeout=60,
                           cwd=os.path.dirname(dockyard.impl.path), env=dockyard.impl.env(), check=True)
            os.close(slave)
            slave, said = -1, b""
            while chunk := read_or_nothing(master):
                said += chunk
            return said
        finally:
            os.close(master)
            if slave >= 0:
                os.close(slave)
    said = stderr_on_a_terminal(f"{stopped}:/tmp/f", str(tmp_path / "f"))  # 3 bytes: a tar of 2048
    assert said == f"Successfully copied 2.05kB to {tmp_path / 'f'}\r\n".encode()
    assert stderr_on_a_terminal("-q", f"{stopped}:/tmp/f", str(tmp_path / "f")) == b""
    assert cp(dockyard, f"{stopped}:/tmp/f", str(tmp_path / "g")).stderr == b""  # no terminal: quiet


def read_or_nothing(fd: int) -> bytes:
    try:
        return os.read(fd, 4096)
    except OSError:  # EIO: the terminal's other side is closed
        return b""


def test_a_directory_is_copied_out_whole_or_by_its_content(dockyard, stopped, tmp_path):
    cp_ok(dockyard, f"{stopped}:/d", str(tmp_path / "new"))  # DEST missing: made, with the content
    assert sorted(os.listdir(tmp_path / "new")) == ["sub", "top"]
    (tmp_path / "there").mkdir()
    cp_ok(dockyard, f"{stopped}:/d", str(tmp_path / "there"))  # DEST a directory: copied into it
    assert (tmp_path / "there" / "d" / "sub" / "y").read_text() == "y\n"
    cp_ok(dockyard, f"{stopped}:/d/.", str(tmp_path / "there"))  # /. : the content only
    assert (tmp_path / "there" / "top").read_text() == "top\n"


def test_a_tar_archive_of_the_source_comes_out_on_stdout(dockyard, stopped):
    archive = tarfile.open(fileobj=io.BytesIO(cp_ok(dockyard, f"{stopped}:/d", "-")))
    assert sorted(archive.getnames()) == ["d", "d/sub", "d/sub/y", "d/top"]
    assert archive.extractfile("d/sub/y").read() == b"y\n"


def test_a_symlink_is_copied_as_a_symlink_and_with_L_as_what_it_points_to(dockyard, stopped, tmp_path):
    cp_ok(dockyard, f"{stopped}:/linkdir", str(tmp_path / "link"))
    assert os.readlink(tmp_path / "link") == "/linkdir-target"
    cp_ok(dockyard, "-L", f"{stopped}:/up", str(tmp_path / "etc"))
    assert (tmp_path / "etc" / "shadow").read_text() == "shadow-inside\n"


def test_copying_out_through_escape_symlinks_reads_the_containers_own_files(dockyard, stopped, tmp_path):
    for path in ("/escape/etc/shadow", "/up/shadow", "/escape/../../escape/etc/shadow"):
        out = cp_ok(dockyard, f"{stopped}:{path}", "-")
        assert tarfile.open(fileobj=io.BytesIO(out)).extractfile("shadow").read() == b"shadow-inside\n"


def test_a_copy_out_belongs_to_the_caller_unless_a_keeps_the_containers_owners(dockyard, stopped, tmp_path):
    cp_ok(dockyard, f"{stopped}:/owned", str(tmp_path / "mine"))
    cp_ok(dockyard, "-a", f"{stopped}:/owned", str(tmp_path / "theirs"))
    assert (os.stat(tmp_path / "mine").st_uid, os.stat(tmp_path / "theirs").st_uid) == (0, 4321)
    assert os.stat(tmp_path / "theirs").st_gid == 4322


def test_a_copy_out_drops_a_setuid_bit_unless_a(dockyard, stopped, tmp_path):
    cp_ok(dockyard, f"{stopped}:/suid", str(tmp_path / "plain"))
    cp_ok(dockyard, "-a", f"{stopped}:/suid", str(tmp_path / "kept"))
    assert os.stat(tmp_path / "plain").st_mode & 0o7777 == 0o755
    assert os.stat(tmp_path / "kept").st_mode & 0o7777 == 0o4755


# --- into a container ---------------------------------------------------------------

def test_a_file_and_a_directory_are_copied_into_a_stopped_container(dockyard, stopped, tmp_path):
    (tmp_path / "hf").write_text("from the host\n")
    os.chmod(tmp_path / "hf", 0o751)
    (tmp_path / "hd" / "in").mkdir(parents=True)
    (tmp_path / "hd" / "in" / "z").write_text("z\n")
    cp_ok(dockyard, str(tmp_path / "hf"), f"{stopped}:/tmp/copied")
    cp_ok(dockyard, str(tmp_path / "hd"), f"{stopped}:/tmp")
    out = probe(dockyard, stopped, "cat /tmp/copied /tmp/hd/in/z; stat -c '%a %u' /tmp/copied\n", tmp_path)
    assert out == "from the host\nz\n751 0\n"


def test_copied_in_files_belong_to_the_containers_root_unless_a(dockyard, stopped, tmp_path):
    (tmp_path / "f").write_text("x\n")
    os.chown(tmp_path / "f", 1234, 1235)
    cp_ok(dockyard, str(tmp_path / "f"), f"{stopped}:/as-root")
    cp_ok(dockyard, "-a", str(tmp_path / "f"), f"{stopped}:/as-source")
    assert probe(dockyard, stopped, "stat -c '%u:%g' /as-root /as-source\n", tmp_path) == "0:0\n1234:1235\n"


def test_copying_in_through_escape_symlinks_lands_inside_the_container(dockyard, stopped, tmp_path):
    planted = f"dockyard-cp-planted-{os.getpid()}"
    (tmp_path / planted).write_text("planted\n")
    cp_ok(dockyard, str(tmp_path / planted), f"{stopped}:/escape/tmp/{planted}")
    cp_ok(dockyard, str(tmp_path / planted), f"{stopped}:/up/{planted}")
    cp_ok(dockyard, str(tmp_path / planted), f"{stopped}:/linkdir/")
    assert not os.path.exists(f"/tmp/{planted}") and not os.path.exists(f"/etc/{planted}")
    out = probe(dockyard, stopped, f"cat /tmp/{planted} /etc/{planted} /linkdir-target/{planted}\n", tmp_path)
    assert out == "planted\n" * 3


def test_a_tar_archive_from_stdin_is_unpacked_into_a_directory(dockyard, stopped, tmp_path):
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as archive:
        info = tarfile.TarInfo("from-tar/file")
        info.size = 4
        archive.addfile(info, io.BytesIO(b"tar\n"))
    cp_ok(dockyard, "-", f"{stopped}:/tmp", input=data.getvalue())
    assert probe(dockyard, stopped, "cat /tmp/from-tar/file\n", tmp_path) == "tar\n"


def test_a_tar_archive_that_writes_through_a_container_symlink_is_refused(dockyard, stopped, tmp_path):
    planted = f"dockyard-cp-through-{os.getpid()}"
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as archive:
        info = tarfile.TarInfo(f"escape/tmp/{planted}")
        archive.addfile(info, io.BytesIO(b""))
    result = cp(dockyard, "-", f"{stopped}:/", input=data.getvalue())
    assert result.returncode == failure_code(result) and b"symlink" in result.stderr and b"hint:" in result.stderr
    assert not os.path.exists(f"/tmp/{planted}")


@pytest.mark.parametrize("driver", ["overlay", "vfs"])
def test_with_userns_copies_belong_to_the_containers_root_and_what_they_pass_stays_its_own(
        dockyard, rootfs, tmp_path, driver):
    if driver == "overlay":
        require_idmapped_mounts(os.path.dirname(dockyard.root))
    result = dockyard("--storage-driver", driver, "run", "--network", "none", "--userns", "--name", "mapped",
                      "--rootfs", rootfs, "sh", "-c", "test -e /made || { echo m > /made; chown 7:7 /made; }; "
                      "test -f /probe.sh && sh /probe.sh; true")
    assert result.returncode == 0, result.stderr
    cp_ok(dockyard, "-a", "mapped:/made", str(tmp_path / "made"))
    assert (os.stat(tmp_path / "made").st_uid, os.stat(tmp_path / "made").st_gid) == (7, 7)  # as seen inside
    (tmp_path / "f").write_text("x\n")
    cp_ok(dockyard, str(tmp_path / "f"), "mapped:/usr/bin/newfile")  # /usr/bin comes from the image's layer
    out = probe(dockyard, "mapped", "stat -c '%u:%g %n' /usr/bin /usr/bin/newfile\n", tmp_path)
    assert out == "0:0 /usr/bin\n0:0 /usr/bin/newfile\n"
    archive = exported(dockyard, "mapped")  # export too shows owners as the container sees them
    assert (archive.getmember("made").uid, archive.getmember("usr/bin/newfile").uid) == (7, 0)


# --- running containers ---------------------------------------------------------------

def test_a_running_container_is_copied_from_and_to_through_its_own_root(dockyard, running, tmp_path):
    assert tarfile.open(fileobj=io.BytesIO(cp_ok(dockyard, f"{running}:/escape/etc/shadow", "-"))) \
        .extractfile("shadow").read() == b"shadow-inside\n"
    cp_ok(dockyard, f"{running}:/vol/in-volume", str(tmp_path / "got"))  # its volumes are there, as in Docker
    assert (tmp_path / "got").read_text() == "from the volume\n"
    whole = tarfile.open(fileobj=io.BytesIO(cp_ok(dockyard, f"{running}:/", "-")))  # the kernel's files stay
    names = set(whole.getnames())
    assert {"./proc", "./sys", "./d/sub/y"} <= names and not [n for n in names if n.startswith(("./proc/", "./sys/"))]
    magic = cp(dockyard, f"{running}:/magic/etc/passwd", "-")  # /magic -> /proc/1/root: a jump, refused
    assert magic.returncode == failure_code(magic) and b"cannot follow" in magic.stderr and not magic.stdout
    refused = cp(dockyard, f"{running}:/proc/kcore", "-")
    assert refused.returncode == failure_code(refused) and b"proc" in refused.stderr and not refused.stdout
    (tmp_path / "core_pattern").write_text("|/tmp/evil\n")
    refused = cp(dockyard, str(tmp_path / "core_pattern"), f"{running}:/proc/sys/kernel/")
    assert refused.returncode == failure_code(refused) and b"proc" in refused.stderr
    planted = f"dockyard-cp-live-{os.getpid()}"
    (tmp_path / planted).write_text("in\n")
    cp_ok(dockyard, str(tmp_path / planted), f"{running}:/escape/tmp/")
    assert not os.path.exists(f"/tmp/{planted}")
    assert dockyard("exec", running, "cat", f"/tmp/{planted}").stdout == "in\n"


def test_a_container_swapping_a_directory_for_a_symlink_to_slash_meanwhile_never_reaches_the_host(
        dockyard, rootfs, tmp_path):
    """CVE-2018-15664's race: while cp runs, the container keeps turning /w/d from a directory into `-> /`."""
    secret = f"dockyard-cp-race-{os.getpid()}"
    with open(f"/tmp/{secret}", "w") as f:  # what the host has at the path the swapped link would reach
        f.write("HOST\n")
    swap = (f"mkdir -p /w/real/tmp; echo CONTAINER > /w/real/tmp/{secret}; echo CONTAINER > /tmp/{secret}; "
            "echo ready; while :; do mv /w/real /w/d; mv /w/d /w/real; ln -s / /w/d; rm /w/d; done")
    engine = dockyard.popen("run", "--network", "none", "--name", "racer", "--rootfs", rootfs, "sh", "-c", swap,
                            stdin=subprocess.DEVNULL)
    try:
        assert engine.stdout.readline() == "ready\n", engine.stderr.read()
        (tmp_path / "planted").write_text("planted\n")
        for _ in range(20):
            out = cp(dockyard, f"racer:/w/d/tmp/{secret}", "-")
            if out.returncode == 0:
                assert tarfile.open(fileobj=io.BytesIO(out.stdout)).extractfile(secret).read() == b"CONTAINER\n"
            cp(dockyard, str(tmp_path / "planted"), f"racer:/w/d/tmp/{secret}-in")
            assert not os.path.exists(f"/tmp/{secret}-in")
    finally:
        dockyard("rm", "-f", "racer")
        engine.communicate(timeout=60)
        os.unlink(f"/tmp/{secret}")


@pytest.mark.usefixtures("no_process_of")
def test_a_created_container_gets_a_file_before_its_first_start(dockyard, rootfs, tmp_path):
    created = dockyard("create", "--network", "none", "--name", "fresh", "--rootfs", rootfs, "cat", "/etc/given")
    assert created.returncode == 0, created.stderr
    (tmp_path / "given").write_text("before start\n")
    cp_ok(dockyard, str(tmp_path / "given"), "fresh:/etc/given")  # its PID 1 waits at the gate: through its root
    assert dockyard("start", "-a", "fresh").stdout == "before start\n"


def test_a_running_userns_container_gets_files_of_its_own_root(dockyard, rootfs, tmp_path):
    require_idmapped_mounts(os.path.dirname(dockyard.root))
    engine = dockyard.popen("run", "--network", "none", "--userns", "--name", "mapped", "--rootfs", rootfs,
                            "sh", "-c", "echo ready; exec sleep 1000", stdin=subprocess.DEVNULL)
    try:
        assert engine.stdout.readline() == "ready\n", engine.stderr.read()
        (tmp_path / "f").write_text("x\n")
        cp_ok(dockyard, str(tmp_path / "f"), "mapped:/usr/bin/newfile")  # its overlay lives in its user namespace
        out = dockyard("exec", "mapped", "stat", "-c", "%u:%g %n", "/usr/bin", "/usr/bin/newfile").stdout
        assert out == "0:0 /usr/bin\n0:0 /usr/bin/newfile\n"
    finally:
        dockyard("rm", "-f", "mapped")
        engine.communicate(timeout=60)


def test_an_ordinary_user_copies_in_and_out_of_its_running_rootless_container(nobody):
    engine = subprocess.Popen(nobody.command("run", "--network", "none", "--name", "box", "--rootfs", nobody.rootfs,
                                             "sh", "-c", "echo inside > /tmp/made; echo ready; exec sleep 1000"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                              preexec_fn=become_nobody, cwd="/",
                              env={**nobody.impl.env(), "HOME": "/", "USER": "nobody"})
    scratch = os.path.dirname(nobody.root)
    try:
        assert engine.stdout.readline() == "ready\n", engine.stderr.read()
        result = nobody("cp", "box:/tmp/made", f"{scratch}/got")
        assert result.returncode == 0, result.stderr
        with open(f"{scratch}/got") as f:
            assert f.read() == "inside\n"
        assert os.stat(f"{scratch}/got").st_uid == NOBODY
        result = nobody("cp", f"{scratch}/got", "box:/tmp/back")
        assert result.returncode == 0, result.stderr
        assert nobody("exec", "box", "stat", "-c", "%u %s", "/tmp/back").stdout == "0 7\n"
    finally:
        nobody("rm", "-f", "box")
        engine.communicate(timeout=60)


# --- errors, and nothing left behind --------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (("-L", "box:/loop", "DEST"), "cannot follow /loop inside the container"),
    (("FILE", "box:/loop/"), "cannot follow /loop/ inside the container"),
    (("box:/magic/etc/passwd", "DEST"), "Could not find the file /magic/etc/passwd"),  # stopped: no /proc
    (("nothere:/tmp/f", "DEST"), "no such container"),
    (("box:/no/such/file", "DEST"), "Could not find the file /no/such/file in container box"),
    (("box:/tmp/f", "box:/tmp/g"), "copying between containers is not supported"),
    (("SRC", "DEST"), "cp needs a container on one side"),
    (("box:/d", "FILE"), "cannot copy a directory to a file"),
    (("box:/tmp/f", "DEST/missing/"), "destination directory"),
])
def test_a_bad_copy_is_refused_with_a_hint_and_writes_nothing(dockyard, stopped, tmp_path, args, message):
    (tmp_path / "out").mkdir()
    (tmp_path / "FILE").write_text("keep\n")
    paths = {"DEST": str(tmp_path / "out" / "x"), "FILE": str(tmp_path / "FILE"), "SRC": str(tmp_path / "FILE")}
    result = cp(dockyard, *(a.replace("DEST", paths["DEST"]) if a.startswith("DEST") else paths.get(a, a)
                            for a in args))
    assert result.returncode == failure_code(result)
    assert message in result.stderr.decode() and "hint:" in result.stderr.decode()
    assert os.listdir(tmp_path / "out") == [] and (tmp_path / "FILE").read_text() == "keep\n"


def test_a_copy_that_fails_half_way_leaves_nothing_behind_either_way(dockyard, stopped, tmp_path):
    (tmp_path / "tree" / "a").mkdir(parents=True)
    (tmp_path / "tree" / "a" / "first").write_text("1\n")
    (tmp_path / "tree" / "z.wh.later").mkdir()
    (tmp_path / "tree" / "z.wh.later" / ".wh.refused").write_text("a name a copy refuses\n")
    result = cp(dockyard, str(tmp_path / "tree"), f"{stopped}:/tmp")  # fails after a/first is written
    assert result.returncode == failure_code(result) and b".wh." in result.stderr
    (tmp_path / "back").mkdir()
    cp_ok(dockyard, f"{stopped}:/tmp/.", str(tmp_path / "back"))
    assert sorted(os.listdir(tmp_path / "back")) == ["f"]  # no tree, no temp dir
    probe(dockyard, stopped, "mkdir -p /t/a /t/z; echo 1 > /t/a/first; echo no > /t/z/.wh.x\n", tmp_path)
    result = cp(dockyard, f"{stopped}:/t", str(tmp_path / "out"))  # and out: fails after t/a/first
    assert result.returncode == failure_code(result) and b".wh." in result.stderr
    assert not [name for name in os.listdir(tmp_path) if name == "out" or name.startswith(".dockyard")]


def test_a_copy_never_replaces_a_directory_with_a_file_nor_a_file_with_a_directory(dockyard, stopped, tmp_path):
    (tmp_path / "f" / "mine").mkdir(parents=True)  # out: host f is a directory, the container's /tmp/f a file
    result = cp(dockyard, f"{stopped}:/tmp/f", str(tmp_path))
    assert result.returncode == failure_code(result) and b"cannot overwrite directory" in result.stderr
    assert (tmp_path / "f" / "mine").is_dir()
    (tmp_path / "d").write_text("a file\n")  # in: /d is a directory in the container
    result = cp(dockyard, str(tmp_path / "d"), f"{stopped}:/")
    assert result.returncode == failure_code(result) and b"cannot overwrite directory" in result.stderr
    assert probe(dockyard, stopped, "cat /d/top\n", tmp_path) == "top\n"


def test_a_read_only_container_refuses_a_copy_in_whether_it_runs_or_not(dockyard, rootfs, tmp_path):
    (tmp_path / "f").write_text("x\n")
    engine = dockyard.popen("run", "--network", "none", "--read-only", "--name", "ro", "--rootfs", rootfs,
                            "sh", "-c", "echo ready; exec sleep 1000", stdin=subprocess.DEVNULL)
    try:
        assert engine.stdout.readline() == "ready\n", engine.stderr.read()
        result = cp(dockyard, str(tmp_path / "f"), "ro:/etc/")
        assert result.returncode == failure_code(result) and b"Read-only" in result.stderr and b"hint:" in result.stderr
    finally:
        dockyard("kill", "ro")
        engine.communicate(timeout=60)
    result = cp(dockyard, str(tmp_path / "f"), "ro:/etc/")  # stopped: its layers could take it, but it said no
    assert result.returncode == failure_code(result) and b"read-only" in result.stderr and b"hint:" in result.stderr
    assert cp(dockyard, "ro:/etc/f", "-").returncode != 0  # it is not there
    dockyard("rm", "ro")


def test_a_tree_nested_deeper_than_python_recurses_is_archived_or_refused_never_a_crash(dockyard, rootfs, tmp_path):
    try:
        result = dockyard("run", "--network", "none", "--name", "deep", "--rootfs", rootfs, "sh", "-c",
                          "i=0; while [ $i -lt 1100 ]; do mkdir d; cd d; i=$((i+1)); done")
        assert result.returncode == 0, result.stderr
        archive = tarfile.open(fileobj=io.BytesIO(cp_ok(dockyard, "deep:/d", "-")))
        assert len(archive.getnames()) == 1100
        assert "/".join(["d"] * 1100) in set(exported(dockyard, "deep").getnames())
        refused = cp(dockyard, "deep:/d", str(tmp_path / "out"))  # onto the host: too deep for the unpacker
        assert refused.returncode == failure_code(refused) and b"nested deeper" in refused.stderr
        assert not [name for name in os.listdir(tmp_path) if name == "out" or name.startswith(".dockyard")]
    finally:  # Python's rmtree (pytest's, and the engine's rm today) recurses: GNU rm does not
        subprocess.run(["rm", "-rf", dockyard.root], check=True)


def test_a_copy_killed_midway_leaves_no_mount_and_the_container_starts(dockyard, rootfs, tmp_path):
    result = dockyard("run", "--network", "none", "--name", "big", "--rootfs", rootfs, "sh", "-c",
                      "test -e /big || dd if=/dev/zero of=/big bs=1M count=64 2>/dev/null; echo started")
    assert result.returncode == 0, result.stderr
    before = mounts()
    copying = subprocess.Popen(dockyard.command("cp", "big:/big", "-"), stdout=subprocess.PIPE,
                               cwd=os.path.dirname(dockyard.impl.path), env=dockyard.impl.env())
    assert copying.stdout.read(1 << 16)  # it is mid-copy (the pipe is full): the layers are mounted now
    copying.send_signal(signal.SIGKILL)
    copying.wait()
    copying.stdout.close()
    assert mounts() == before
    assert dockyard("start", "-a", "big").stdout == "started\n"


# --- export ------------------------------------------------------------------------------

def exported(dockyard, box: str) -> tarfile.TarFile:
    result = subprocess.run(dockyard.command("export", box), capture_output=True, timeout=60,
                            cwd=os.path.dirname(dockyard.impl.path), env=dockyard.impl.env())
    assert result.returncode == 0, result.stderr.decode()
    return tarfile.open(fileobj=io.BytesIO(result.stdout))


def test_export_writes_the_stopped_containers_filesystem_with_its_changes_and_deletions(dockyard, stopped):
    archive = exported(dockyard, stopped)
    names = set(archive.getnames())
    assert {"bin/busybox", "d/sub/y", "etc/shadow", "escape"} <= names
    assert "bin/arch" not in names  # the container deleted it: overlay's whiteout, or the vfs copy's absence
    assert archive.getmember("escape").issym() and archive.getmember("escape").linkname == "/"
    assert archive.extractfile("etc/shadow").read() == b"shadow-inside\n"
    assert archive.getmember("owned").uid == 4321


def test_export_of_a_running_container_leaves_out_its_volumes_and_proc(dockyard, running):
    archive = exported(dockyard, running)
    names = set(archive.getnames())
    assert {"d/sub/y", "ready", "vol"} <= names
    assert "vol/in-volume" not in names and not any(name.startswith("proc/") for name in names)


def test_export_o_writes_a_file_only_when_it_is_whole(dockyard, stopped, tmp_path):
    result = dockyard("export", "-o", str(tmp_path / "box.tar"), stopped)
    assert result.returncode == 0, result.stderr
    assert "d/top" in tarfile.open(tmp_path / "box.tar").getnames()
    missing = dockyard("export", "-o", str(tmp_path / "none.tar"), "nothere")
    assert missing.returncode == failure_code(missing)
    assert "no such container" in missing.stderr and "hint:" in missing.stderr
    assert not os.path.exists(tmp_path / "none.tar") and not os.path.exists(tmp_path / "none.tar.partial")
