"""--explain: one line per step asked of the kernel or the disk, tagged with its chapter.

The narration goes to stderr and leaves stdout alone; without the flag the
engine says nothing of the kind.
"""

import re

from conftest import needs_root
from registry_helpers import make_image, our_registry, push_image

STEP = re.compile(r"^(?P<text>.*\S)  \[(?:ch (?P<chapter>\d\d)|(?P<final>final))\]$")
FINAL = 99


def steps(stderr: str) -> list[tuple[str, int]]:
    """(text, chapter) of each narrated line; every other line of stderr is an error."""
    found = []
    for line in stderr.splitlines():
        match = STEP.match(line)
        assert match, f"not a narrated step: {line!r}\n{stderr}"
        found.append((match["text"], FINAL if match["final"] else int(match["chapter"])))
    return found


def has_step(found: list[tuple[str, int]], pattern: str, chapter: int) -> bool:
    return any(re.fullmatch(pattern, text) and tagged == chapter for text, tagged in found)


@needs_root
def test_explain_narrates_the_chroot_and_the_exec_and_leaves_stdout_alone(dockyard, rootfs):
    result = dockyard("--explain", "run", "--rootfs", rootfs, "echo", "hello")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello\n"
    found = steps(result.stderr)
    assert has_step(found, r"execve\(echo hello\)", 1), found
    assert has_step(found, r"mount\(proc, \S*/proc, proc, MS_NOSUID\|MS_NODEV\|MS_NOEXEC\) -> 0", 1), found
    if dockyard.impl.chapter == 1:
        assert has_step(found, rf"chroot\({re.escape(rootfs)}\) -> 0", 1), found
    else:
        assert has_step(found, r"clone3\(\S*CLONE_NEWNS\S*CLONE_NEWPID\S*\) -> [1-9]\d*", 2), found
        assert has_step(found, r"pivot_root\(\., \.\) -> 0", 2), found
        assert has_step(found, r"sethostname\([0-9a-f]{12}\) -> 0", 2), found


@needs_root
def test_without_explain_a_run_says_nothing_on_stderr(dockyard, rootfs):
    result = dockyard("run", "--rootfs", rootfs, "echo", "hello")
    assert (result.returncode, result.stdout, result.stderr) == (0, "hello\n", "")


@needs_root
def test_a_refused_command_is_narrated_before_its_error(dockyard, rootfs):
    result = dockyard("--explain", "run", "--rootfs", rootfs, "nosuch")
    assert result.returncode == 127
    narrated, error = result.stderr.rsplit("error: ", 1)
    assert has_step(steps(narrated), r"execve\(nosuch\)", 1)
    assert error.startswith("nosuch: executable file not found")


@needs_root
def test_explain_shows_the_cgroup_files_written_for_a_memory_limit(dockyard, rootfs):
    result = dockyard("--explain", "run", "--memory", "64m", "--rootfs", rootfs, "true")
    assert result.returncode == 0, result.stderr
    found = steps(result.stderr)
    assert has_step(found, r"write /sys/fs/cgroup/\S+/memory\.(max|limit_in_bytes) = 67108864", 3), found
    # The pid goes into cgroup.procs; final on cgroup v2 starts PID 1 there instead (clone3's CLONE_INTO_CGROUP).
    assert has_step(found, r"write /sys/fs/cgroup/\S+/cgroup\.procs = [1-9]\d*", 3) or \
        has_step(found, r"clone3\(\S*\|CLONE_INTO_CGROUP\) -> [1-9]\d*", 2), found
    assert has_step(found, r"mkdir /sys/fs/cgroup/.*", 3), found
    assert has_step(found, r"rmdir /sys/fs/cgroup/\S+", 3), found


@needs_root
def test_explain_shows_the_overlay_mount_of_a_containers_layers(dockyard, rootfs):
    result = dockyard("--explain", "run", "--rm", "--rootfs", rootfs, "true")
    assert result.returncode == 0, result.stderr
    assert has_step(steps(result.stderr), r"mount\(overlay, \S+, overlay, lowerdir=\d+ layers\) -> 0", 4)


@needs_root
def test_explain_shows_each_blob_written_and_each_layer_unpacked(dockyard, busybox_rootfs):
    imported = dockyard("--explain", "import", busybox_rootfs, "bb:latest")
    assert imported.returncode == 0, imported.stderr
    assert has_step(steps(imported.stderr), r"write blob into \S+ -> sha256:[0-9a-f]{12}\.\.\.", 5)
    ran = dockyard("--explain", "run", "--rm", "bb", "true")  # the first run unpacks the layer
    assert ran.returncode == 0, ran.stderr
    assert has_step(steps(ran.stderr), r"unpack layer into \S+ -> diff id sha256:[0-9a-f]{12}\.\.\., \d+ bytes", 5)


def test_explain_shows_each_http_exchange_with_a_registry(dockyard, tmp_path):
    with our_registry(dockyard, tmp_path) as (addr, _, _):
        push_image(addr, "app", make_image({"hello": b"hi\n"}))
        pulled = dockyard("--explain", "pull", f"{addr}/app:v1")
    assert pulled.returncode == 0, pulled.stderr
    narrated = "\n".join(line for line in pulled.stderr.splitlines() if STEP.match(line))
    found = steps(narrated)
    assert has_step(found, rf"GET http://{re.escape(addr)}/v2/app/manifests/v1 -> 200", 6), found
    assert has_step(found, rf"GET http://{re.escape(addr)}/v2/app/blobs/sha256:[0-9a-f]{{12}}\.\.\. -> 200", 6), found


@needs_root
def test_explain_shows_each_build_cache_lookup_and_its_answer(dockyard, busybox_image, tmp_path):
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM busybox\nRUN echo hi > /greeting\n")
    lookups = []
    for _ in range(2):
        built = dockyard("--explain", "build", "-q", "-t", "app", str(context))
        assert built.returncode == 0, built.stderr
        lookups.append([(text, chapter) for text, chapter in
                        steps("\n".join(line for line in built.stderr.splitlines() if STEP.match(line)))
                        if text.startswith("build cache")])
    assert [re.sub(r"sha256:\S+", "KEY", text) for text, _ in lookups[0]] == ["build cache KEY -> miss"]
    assert [re.sub(r"sha256:\S+", "KEY", text) for text, _ in lookups[1]] == ["build cache KEY -> hit"]
    assert {chapter for _, chapter in lookups[0] + lookups[1]} == {7}


@needs_root
def test_explain_shows_the_network_and_the_security_steps_of_final(dockyard, rootfs):
    result = dockyard("--explain", "run", "--rm", "--rootfs", rootfs, "true")
    assert result.returncode == 0, result.stderr
    found = steps(result.stderr)
    assert has_step(found, r"ip link add \S+ master \d+ type veth peer eth0 netns [1-9]\d*", FINAL), found
    assert has_step(found, r"ip route add default via [\d.]+", FINAL), found
    assert has_step(found, r"prctl\(PR_CAPBSET_DROP, CAP_SYS_ADMIN\) -> 0", FINAL), found
    assert has_step(found, r"seccomp\(SECCOMP_SET_MODE_FILTER, [1-9]\d* BPF instructions\) -> 0", FINAL), found
