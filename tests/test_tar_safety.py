"""Chapter 05 on: hostile layers never reach outside the layer's directory.

Each archive below tries one classic trick against an unpacker. The test
plants a "host" directory next to the store, runs `import` (a rootfs tar)
or `load` (an image whose layer is hostile), and checks that the host
directory is exactly as it was: no file created, changed, linked or read
into the store. A trick is either refused (exit 1, error + hint, no image)
or confined to the layer (the image exists, the host is untouched).
"""

import gzip
import os
import stat
import subprocess
import sys

import pytest

from conftest import needs_root, failure_code
from oci_helpers import directory, file, hardlink, oci_archive, symlink, tar_bytes

pytestmark = needs_root


@pytest.fixture
def host(tmp_path) -> str:
    """A directory standing for the host: a secret file and an empty dir."""
    root = tmp_path / "host"
    (root / "dir").mkdir(parents=True)
    (root / "secret").write_text("the host's secret\n")
    return str(root)


def snapshot(root: str) -> dict:
    """Every path under `root` with its type, size, link count, mode and content."""
    seen = {}
    for directory_path, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(directory_path, name)
            st = os.lstat(path)
            content = open(path, "rb").read() if os.path.isfile(path) and not os.path.islink(path) else None
            seen[os.path.relpath(path, root)] = (st.st_mode, st.st_size, st.st_nlink, content)
    return seen


def files_changed(before: dict, after: dict) -> list[str]:
    """Paths that are new or changed, other than directories (a refused command may make its empty ones)."""
    return sorted(path for path, (mode, *rest) in after.items()
                  if not stat.S_ISDIR(mode) and before.get(path) != (mode, *rest))


@pytest.fixture
def everywhere(tmp_path):
    """Watches the test's whole directory: the host stand-in, the --root and its temp dir, the archives.

    A path that climbs out of the layer lands somewhere above it, inside the
    state root as likely as next to it; so a refused archive must leave no file
    anywhere here that was not there before.
    """
    class Watch:
        def start(self) -> None:
            self.before = snapshot(str(tmp_path))

        def changes(self) -> list[str]:
            return files_changed(self.before, snapshot(str(tmp_path)))
    return Watch()


def import_tar(dockyard, tmp_path, data: bytes, watch=None):
    """`import` the archive `data` as evil:latest; `watch` starts looking once the archive is written."""
    path = tmp_path / "layer.tar"
    path.write_bytes(data)
    if watch:
        watch.start()
    return dockyard("import", str(path), "evil:latest")


def refused(result, dockyard) -> bool:
    """Exit 1 with error and hint, and no image named evil (as a working `images` lists them)."""
    listed = dockyard("images", "-q", "evil")
    assert listed.returncode == 0, listed.stderr
    return (result.returncode == failure_code(result) and "error:" in result.stderr and "hint:" in result.stderr
            and "Traceback" not in result.stderr and listed.stdout.strip() == "")


def store_temp_is_empty(dockyard) -> bool:
    tmp = os.path.join(dockyard.root, "tmp")
    return not os.path.isdir(tmp) or os.listdir(tmp) == []


@pytest.mark.parametrize("depth", [1, 2, 3])  # into the store temp, the state root, the test dir
def test_an_entry_that_climbs_out_with_dotdot_is_refused(dockyard, tmp_path, host, everywhere, depth):
    result = import_tar(dockyard, tmp_path, tar_bytes(file("../" * depth + "planted", b"pwned")), everywhere)
    assert refused(result, dockyard), result.stderr
    assert everywhere.changes() == []
    assert store_temp_is_empty(dockyard)


def test_an_absolute_entry_is_confined_to_the_layer(dockyard, tmp_path, host):
    before = snapshot(host)
    result = import_tar(dockyard, tmp_path, tar_bytes(file(os.path.join(host, "planted"), b"pwned")))
    assert result.returncode == 0, result.stderr
    assert snapshot(host) == before


def test_writing_through_a_symlink_to_the_host_is_refused(dockyard, tmp_path, host):
    before = snapshot(host)
    evil = tar_bytes(symlink("escape", os.path.join(host, "dir")), file("escape/planted", b"pwned"))
    assert refused(import_tar(dockyard, tmp_path, evil), dockyard)
    assert snapshot(host) == before


def test_writing_through_a_relative_symlink_that_climbs_out_is_refused(dockyard, tmp_path, host):
    before = snapshot(host)
    evil = tar_bytes(symlink("up", "../../../../../../../../.."), file(f"up{host}/planted", b"pwned"))
    assert refused(import_tar(dockyard, tmp_path, evil), dockyard)
    assert snapshot(host) == before


def test_a_directory_replaced_by_a_symlink_cannot_be_written_through(dockyard, tmp_path, host):
    before = snapshot(host)
    evil = tar_bytes(directory("d"), symlink("d", os.path.join(host, "dir")), file("d/planted", b"pwned"))
    assert refused(import_tar(dockyard, tmp_path, evil), dockyard)
    assert snapshot(host) == before


def test_a_hardlink_to_a_host_file_is_refused(dockyard, tmp_path, host):
    before = snapshot(host)
    evil = tar_bytes(hardlink("stolen", os.path.join(host, "secret")))
    assert refused(import_tar(dockyard, tmp_path, evil), dockyard)
    assert snapshot(host) == before  # the secret's link count is part of the snapshot


def test_a_hardlink_that_climbs_out_is_refused(dockyard, tmp_path, host):
    before = snapshot(host)
    evil = tar_bytes(hardlink("stolen", "../../../../../../../.." + os.path.join(host, "secret")))
    assert refused(import_tar(dockyard, tmp_path, evil), dockyard)
    assert snapshot(host) == before


def test_a_hardlink_through_a_symlink_is_refused(dockyard, tmp_path, host):
    before = snapshot(host)
    evil = tar_bytes(symlink("h", host), hardlink("stolen", "h/secret"))
    assert refused(import_tar(dockyard, tmp_path, evil), dockyard)
    assert snapshot(host) == before


def test_a_later_file_replaces_an_earlier_symlink_instead_of_writing_through_it(dockyard, tmp_path, host):
    before = snapshot(host)
    evil = tar_bytes(symlink("f", os.path.join(host, "secret")), file("f", b"overwritten\n"))
    result = import_tar(dockyard, tmp_path, evil)
    assert result.returncode == 0, result.stderr
    assert snapshot(host) == before


def test_a_whiteout_that_names_the_parent_directory_is_refused(dockyard, tmp_path, host):
    evil = oci_archive([tar_bytes(directory("a"), file("a/.wh..."))])
    (tmp_path / "evil.tar").write_bytes(evil)
    result = dockyard("load", "-i", str(tmp_path / "evil.tar"))
    assert result.returncode == failure_code(result) and "hint:" in result.stderr
    listed = dockyard("images", "-q")
    assert listed.returncode == 0 and listed.stdout == "", listed.stderr


def test_an_image_whose_layer_writes_through_a_symlink_is_refused_by_load(dockyard, tmp_path, host):
    before = snapshot(host)
    layer = tar_bytes(symlink("escape", os.path.join(host, "dir")), file("escape/planted", b"pwned"))
    (tmp_path / "evil.tar").write_bytes(oci_archive([layer], name="evil:latest"))
    result = dockyard("load", "-i", str(tmp_path / "evil.tar"))
    assert refused(result, dockyard), result.stderr
    assert snapshot(host) == before
    assert os.listdir(os.path.join(dockyard.root, "images", "blobs", "sha256")) == []


def test_a_truncated_tar_is_refused_and_leaves_no_image(dockyard, tmp_path):
    data = tar_bytes(file("big", b"y" * 100000))
    assert refused(import_tar(dockyard, tmp_path, data[:20000]), dockyard)
    assert store_temp_is_empty(dockyard)


def test_something_that_is_not_a_tar_is_refused(dockyard, tmp_path):
    assert refused(import_tar(dockyard, tmp_path, b"this is not a tar archive\n" * 40), dockyard)


# A unit check where the CLI cannot look: the unpacker hashes on a thread of its own, and the engine
# forks children that join user and mount namespaces, which a process with a second thread cannot do.
UNPACK_EACH = """
import importlib, sys, tempfile, threading
tar = importlib.import_module(sys.argv[1] + ".tar")
importlib.import_module(sys.argv[1] + ".tarformat").cpu_to_spare = lambda: True  # a thread, even on a busy machine
for path in sys.argv[2:]:
    try:
        with open(path, "rb") as layer:
            tar.unpack(layer, tempfile.mkdtemp(dir=sys.argv[2] + ".d"))
        outcome = "unpacked"
    except Exception as err:
        outcome = type(err).__name__
    print(outcome, threading.active_count())
"""


def test_an_unpack_leaves_no_thread_running_whether_the_layer_is_taken_or_refused(impl, tmp_path):
    whole = tar_bytes(file("big", b"y" * 3_000_000), file("small"))
    packed = gzip.compress(whole)
    layers = [whole, whole[:2_000_000], tar_bytes(symlink("lib", "/etc"), file("lib/passwd")),
              packed[:len(packed) // 2], b"\x1f\x8b" + bytes(600), b"not a tar archive\n" * 100]
    paths = []
    for number, data in enumerate(layers):
        (tmp_path / f"{number}.tar").write_bytes(data)
        paths.append(str(tmp_path / f"{number}.tar"))
    os.mkdir(paths[0] + ".d")
    result = subprocess.run([sys.executable, "-c", UNPACK_EACH, impl.name, *paths], capture_output=True,
                            text=True, env=impl.env(), cwd=os.path.dirname(impl.path), timeout=60)
    assert result.returncode == 0, result.stderr
    outcomes = [line.split() for line in result.stdout.splitlines()]
    assert [outcome for outcome, _ in outcomes] == ["unpacked", "BadArchive", "UnsafeLayer", "BadArchive",
                                                    "BadArchive", "BadArchive"]
    assert [threads for _, threads in outcomes] == ["1"] * len(layers)
