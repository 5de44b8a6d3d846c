"""Chapter 05 on: the store and the archives speak OCI with other tools (Debian's skopeo and umoci).

skopeo and umoci read our store as an OCI image layout, `<root>/images`,
with names in the `org.opencontainers.image.ref.name` annotation; and we
load the archives they write.
"""

import json
import os
import subprocess
import tarfile

import pytest

from conftest import needs_root, require_programs
from oci_helpers import directory, file, oci_archive, symlink, tar_bytes

pytestmark = needs_root


@pytest.fixture(autouse=True)
def skopeo_and_umoci():
    require_programs("skopeo", "umoci")


def tool(*argv: str) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{argv}: {result.stderr}"
    return result.stdout


def layout(dockyard) -> str:
    return os.path.join(dockyard.root, "images")


def umoci_unpack(dockyard, name: str, bundle: str) -> str:
    """Unpack our image with umoci (which applies whiteouts itself); return its rootfs."""
    tool("umoci", "unpack", "--image", f"{layout(dockyard)}:{name}", bundle)
    return os.path.join(bundle, "rootfs")


def test_skopeo_reads_an_image_from_our_store(dockyard, busybox_image, tmp_path):
    ours = json.loads(dockyard("inspect", "busybox").stdout)[0]
    theirs = json.loads(tool("skopeo", "inspect", "--config", f"oci:{layout(dockyard)}:busybox:latest"))
    assert theirs["rootfs"]["diff_ids"] == ours["RootFS"]["Layers"]
    tool("skopeo", "copy", "-q", f"oci:{layout(dockyard)}:busybox:latest", f"dir:{tmp_path / 'copy'}")
    assert (tmp_path / "copy" / "manifest.json").exists()


def test_umoci_unpacks_an_image_from_our_store(dockyard, busybox_image, tmp_path):
    rootfs = umoci_unpack(dockyard, "busybox:latest", str(tmp_path / "bundle"))
    assert os.path.isfile(os.path.join(rootfs, "bin", "busybox"))
    config = json.load(open(tmp_path / "bundle" / "config.json"))
    assert config["process"]["args"] == ["sh"]


@pytest.mark.parametrize("transport", ["oci-archive", "docker-archive"])
def test_we_load_what_skopeo_writes(dockyard, busybox_image, tmp_path, transport):
    image_id = dockyard("images", "-q").stdout.strip()
    archive = tmp_path / "skopeo.tar"
    tool("skopeo", "copy", "-q", f"oci:{layout(dockyard)}:busybox:latest", f"{transport}:{archive}:copied:v1")
    assert dockyard("rmi", "busybox").returncode == 0
    result = dockyard("load", "-i", str(archive))
    assert result.stdout == "Loaded image: copied:v1\n", result.stderr
    assert json.loads(dockyard("inspect", "copied:v1").stdout)[0]["Id"][7:19] == image_id


def test_an_image_made_by_umoci_comes_through_us_intact(dockyard, tmp_path):
    theirs = str(tmp_path / "umoci-layout")
    tool("umoci", "init", "--layout", theirs)
    tool("umoci", "new", "--image", f"{theirs}:demo")
    tool("umoci", "unpack", "--image", f"{theirs}:demo", str(tmp_path / "b1"))
    (tmp_path / "b1" / "rootfs" / "hello").write_text("made by umoci\n")
    tool("umoci", "repack", "--image", f"{theirs}:demo", str(tmp_path / "b1"))
    tool("skopeo", "copy", "-q", f"oci:{theirs}:demo", f"oci-archive:{tmp_path / 'u.tar'}:umoci:v1")
    assert dockyard("load", "-i", str(tmp_path / "u.tar")).returncode == 0
    rootfs = umoci_unpack(dockyard, "umoci:v1", str(tmp_path / "b2"))
    assert open(os.path.join(rootfs, "hello")).read() == "made by umoci\n"


def test_a_bare_umoci_layout_loads_as_a_nameless_image(dockyard, tmp_path):
    theirs = str(tmp_path / "umoci-layout")
    tool("umoci", "init", "--layout", theirs)
    tool("umoci", "new", "--image", f"{theirs}:demo")
    with tarfile.open(tmp_path / "layout.tar", "w") as archive:
        archive.add(theirs, arcname=".")
    result = dockyard("load", "-i", str(tmp_path / "layout.tar"))
    assert result.stdout.startswith("Loaded image ID: sha256:"), result.stderr
    assert dockyard("images").stdout.splitlines()[1].split()[:2] == ["<none>", "<none>"]


THREE_LAYERS = [
    tar_bytes(file("a", b"a1\n"), directory("b"), file("b/old", b"old\n"), directory("d"), file("d/e", b"e\n"),
              file("keep", b"k\n"), symlink("link", "keep")),
    tar_bytes(file(".wh.a"), directory("b"), file("b/.wh..wh..opq"), file("b/new", b"new\n"), file(".wh.link")),
    tar_bytes(file("a", b"a3\n"), file(".wh.d")),
]


def test_whiteouts_across_three_layers_hide_what_they_name(dockyard, tmp_path):
    (tmp_path / "three.tar").write_bytes(oci_archive(THREE_LAYERS, name="three:latest"))
    assert dockyard("load", "-i", str(tmp_path / "three.tar")).returncode == 0
    rootfs = umoci_unpack(dockyard, "three:latest", str(tmp_path / "bundle"))
    assert sorted(os.listdir(rootfs)) == ["a", "b", "keep"]
    assert open(os.path.join(rootfs, "a")).read() == "a3\n"
    assert os.listdir(os.path.join(rootfs, "b")) == ["new"]


def test_unpacked_layers_hold_overlay_whiteouts(dockyard, tmp_path):
    (tmp_path / "three.tar").write_bytes(oci_archive(THREE_LAYERS, name="three:latest"))
    dockyard("load", "-i", str(tmp_path / "three.tar"))
    diff_ids = json.loads(dockyard("inspect", "three").stdout)[0]["RootFS"]["Layers"]
    middle = os.path.join(dockyard.root, "layers", diff_ids[1][7:])
    st = os.lstat(os.path.join(middle, "a"))
    assert oct(st.st_mode)[:4] == "0o20" and st.st_rdev == 0  # a 0/0 character device
    assert os.getxattr(os.path.join(middle, "b"), "trusted.overlay.opaque") == b"y"
    assert not os.path.exists(os.path.join(middle, "b", ".wh..wh..opq"))
