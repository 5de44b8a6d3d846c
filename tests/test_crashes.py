"""final/ only: an engine killed at any write step leaves a store that works.

The engine names its write steps (final/faults.py); DOCKYARD_FAULT=POINT:N
makes it SIGKILL itself the Nth time it reaches POINT. Each test runs one
command (import, load, commit, pull, build) from the same starting store,
killing it at every visit of every point in turn, until a run reaches no
more visits. After each kill:

- the store still reads (`images`), and the new name is either absent or
  names a whole image;
- `image prune` removes what the dead engine left in tmp/, and every blob
  of the image that was there before still checks out (`save`);
- the same command, run again, succeeds.

A kill that never happens is a failure too: each command must reach the
write steps it is listed with, so a hook that went missing is caught.
"""

import os
import shutil
import subprocess

import pytest

from conftest import needs_root
from registry_helpers import our_registry

pytestmark = needs_root
POINTS = ("blob-written", "blob-stored", "file-written", "file-replaced", "layer-unpacked", "layer-stored")
KILLED = -9


def killed_at_each_write(dockyard, template: str, argv: list[str], name: str) -> dict[str, int]:
    """Run `argv` from a copy of `template` (the --root), killed at each visit of each point; count the kills."""
    kills = {}
    for point in POINTS:
        for visit in range(1, 100):
            restore(template, dockyard.root)
            env = {**dockyard.impl.env(), "DOCKYARD_FAULT": f"{point}:{visit}"}
            result = dockyard(*argv, env=env, timeout=120)
            if result.returncode != KILLED:
                assert result.returncode == 0, f"{point}:{visit}: {result.stderr}"
                break
            assert f"killed at {point}, visit {visit}" in result.stderr
            assert_store_survives(dockyard, argv, name, f"{point}:{visit}")
            kills[point] = visit
    return kills


def restore(template: str, root: str) -> None:
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(template, root, symlinks=True)


def assert_store_survives(dockyard, argv: list[str], name: str, where: str) -> None:
    listed = dockyard("images", name.rsplit(":", 1)[0])
    assert listed.returncode == 0, f"after a kill at {where}, images fails: {listed.stderr}"
    if len(listed.stdout.splitlines()) > 1:  # the kill came after the name was written: the image is whole
        assert dockyard("save", "-o", os.devnull, name).returncode == 0, where
    pruned = dockyard("image", "prune", "-f")
    assert pruned.returncode == 0, f"after a kill at {where}: {pruned.stderr}"
    assert os.listdir(os.path.join(dockyard.root, "tmp")) == [], f"prune left temp files after {where}"
    kept = dockyard("save", "-o", os.devnull, "busybox")
    assert kept.returncode == 0, f"after a kill at {where}, the base image is damaged: {kept.stderr}"
    again = dockyard(*argv, timeout=120)
    assert again.returncode == 0, f"after a kill at {where}, {argv[0]} fails: {again.stderr}"


@pytest.fixture
def template(dockyard, busybox_rootfs, tmp_path) -> str:
    """A --root holding busybox:latest, kept aside; the test's --root is made from it before each run."""
    assert dockyard("import", "-c", 'CMD ["sh"]', busybox_rootfs, "busybox:latest").returncode == 0
    return dockyard.root


def set_aside(dockyard, tmp_path) -> str:
    """Move the test's --root to a template directory; return its path."""
    template = str(tmp_path / "template")
    shutil.copytree(dockyard.root, template, symlinks=True)
    return template


def test_import_killed_at_each_write_step(dockyard, template, rootfs, tmp_path):
    argv = ["import", rootfs, "half:latest"]
    kills = killed_at_each_write(dockyard, set_aside(dockyard, tmp_path), argv, "half:latest")
    assert kills == {"blob-written": 3, "blob-stored": 3, "file-written": 1, "file-replaced": 1}  # layer,
    # config and manifest; then index.json


def another_image(dockyard, rootfs: str, name: str) -> None:
    """Import `rootfs` plus a file of its own as `name`: an image that shares no blob with busybox."""
    with open(os.path.join(rootfs, "extra"), "w") as f:
        f.write("only in this image\n")
    assert dockyard("import", rootfs, name).returncode == 0


def test_load_killed_at_each_write_step(dockyard, template, rootfs, tmp_path):
    archive = str(tmp_path / "half.tar")
    another_image(dockyard, rootfs, "half:latest")
    assert dockyard("save", "-o", archive, "half").returncode == 0
    assert dockyard("rmi", "half").returncode == 0
    kills = killed_at_each_write(dockyard, set_aside(dockyard, tmp_path), ["load", "-i", archive], "half:latest")
    assert set(kills) == set(POINTS), kills  # load unpacks the layer to check its diff id
    assert kills["blob-stored"] >= 3


def test_commit_killed_at_each_write_step(dockyard, template, tmp_path):
    made = dockyard("run", "--name", "changed", "busybox", "sh", "-c", "head -c 100000 /dev/urandom > /big")
    assert made.returncode == 0, made.stderr
    argv = ["commit", "changed", "half:latest"]
    kills = killed_at_each_write(dockyard, set_aside(dockyard, tmp_path), argv, "half:latest")
    assert kills == {"blob-written": 3, "blob-stored": 3, "file-written": 1, "file-replaced": 1}
    assert dockyard("rm", "changed").returncode == 0


def test_pull_killed_at_each_write_step(dockyard, template, rootfs, tmp_path):
    with our_registry(dockyard, tmp_path) as (addr, _, _):
        another_image(dockyard, rootfs, f"{addr}/half:v1")
        assert dockyard("push", f"{addr}/half:v1").returncode == 0
        assert dockyard("rmi", f"{addr}/half:v1").returncode == 0
        argv = ["pull", f"{addr}/half:v1"]
        kills = killed_at_each_write(dockyard, set_aside(dockyard, tmp_path), argv, f"{addr}/half:v1")
    assert kills == {"blob-written": 3, "blob-stored": 3, "file-written": 1, "file-replaced": 1}


def test_build_killed_at_each_write_step(dockyard, template, tmp_path):
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM busybox\nCOPY file /file\nRUN cat /file > /copy\n")
    (context / "file").write_text("built\n")
    argv = ["build", "-t", "half", str(context)]
    kills = killed_at_each_write(dockyard, set_aside(dockyard, tmp_path), argv, "half:latest")
    assert set(kills) == set(POINTS), kills  # FROM unpacks busybox; each step a layer and a cache entry
    assert kills["blob-stored"] >= 4 and kills["file-replaced"] >= 3
