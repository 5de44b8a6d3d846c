"""Chapter 05 on: the image store and its commands (import, images, inspect, tag, rmi, save, load, prune)."""

import gzip
import json
import os
import shutil
import subprocess
import tarfile

import pytest

from conftest import needs_root, failure_code
from oci_helpers import oci_archive, sha256, tar_bytes, file

pytestmark = needs_root


def inspect(dockyard, name: str) -> dict:
    result = dockyard("inspect", name)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)[0]


def image_ids(dockyard) -> list[str]:
    """The IDs `images -q` lists; a failing `images` is a failure, never an empty store."""
    result = dockyard("images", "-q")
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def blobs(dockyard) -> set[str]:
    return set(os.listdir(os.path.join(dockyard.root, "images", "blobs", "sha256")))


def is_user_error(result) -> bool:
    return (result.returncode == failure_code(result) and result.stderr.startswith("error:") and "hint:" in result.stderr
            and "Traceback" not in result.stderr)


def test_import_of_a_directory_makes_an_image_that_images_lists(dockyard, busybox_image):
    lines = dockyard("images").stdout.splitlines()
    assert lines[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert lines[1].split()[:2] == ["busybox", "latest"]
    assert len(image_ids(dockyard)) == 1 and len(image_ids(dockyard)[0]) == 12


def test_the_store_is_an_oci_image_layout(dockyard, busybox_image):
    layout = os.path.join(dockyard.root, "images")
    assert json.load(open(os.path.join(layout, "oci-layout"))) == {"imageLayoutVersion": "1.0.0"}
    index = json.load(open(os.path.join(layout, "index.json")))
    [entry] = index["manifests"]
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == "busybox:latest"
    manifest_blob = open(os.path.join(layout, "blobs", "sha256", entry["digest"][7:]), "rb").read()
    assert sha256(manifest_blob) == entry["digest"]
    manifest = json.loads(manifest_blob)
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    for blob in [manifest["config"], *manifest["layers"]]:
        data = open(os.path.join(layout, "blobs", "sha256", blob["digest"][7:]), "rb").read()
        assert sha256(data) == blob["digest"] and len(data) == blob["size"]


def test_import_applies_config_changes(dockyard, rootfs):
    changes = ["CMD echo hi", "ENTRYPOINT [\"/bin/sh\", \"-c\"]", "ENV A=1 B=\"two words\"", "WORKDIR /srv",
               "USER nobody", "EXPOSE 80", "VOLUME /data", "LABEL team=dock", "STOPSIGNAL SIGINT"]
    args = [arg for change in changes for arg in ("-c", change)]
    assert dockyard("import", *args, rootfs, "configured").returncode == 0
    config = inspect(dockyard, "configured")["Config"]
    assert config["Cmd"] == ["/bin/sh", "-c", "echo hi"] and config["Entrypoint"] == ["/bin/sh", "-c"]
    assert config["Env"] == ["A=1", "B=two words"] and config["WorkingDir"] == "/srv"
    assert config["User"] == "nobody" and config["ExposedPorts"] == {"80/tcp": {}}
    assert config["Volumes"] == {"/data": {}} and config["Labels"] == {"team": "dock"}
    assert config["StopSignal"] == "SIGINT"


def test_the_same_files_give_the_same_layer_digest(dockyard, rootfs, tmp_path):
    with tarfile.open(tmp_path / "rootfs.tar.gz", "w:gz") as archive:
        archive.add(rootfs, arcname=".")
    assert dockyard("import", rootfs, "from-dir").returncode == 0
    assert dockyard("import", str(tmp_path / "rootfs.tar.gz"), "from-tar").returncode == 0
    assert inspect(dockyard, "from-dir")["RootFS"] == inspect(dockyard, "from-tar")["RootFS"]


def test_tag_adds_a_name_and_rmi_of_one_name_only_untags(dockyard, busybox_image):
    assert dockyard("tag", "busybox", "localhost:5000/box:v1").returncode == 0
    assert "localhost:5000/box:v1" in inspect(dockyard, "busybox")["RepoTags"]
    kept = blobs(dockyard)
    result = dockyard("rmi", "busybox")
    assert result.stdout == "Untagged: busybox:latest\n"
    assert blobs(dockyard) == kept
    assert is_user_error(dockyard("inspect", "busybox"))


def test_rmi_of_the_last_name_deletes_the_image_and_its_blobs(dockyard, busybox_image):
    result = dockyard("rmi", "busybox:latest")
    assert result.returncode == 0 and "Deleted: sha256:" in result.stdout
    assert image_ids(dockyard) == [] and blobs(dockyard) == set()


def test_rmi_by_id_of_an_image_with_two_names_needs_force(dockyard, busybox_image):
    dockyard("tag", "busybox", "other")
    image_id = image_ids(dockyard)[0]
    assert is_user_error(dockyard("rmi", image_id))
    assert dockyard("rmi", "-f", image_id).returncode == 0
    assert image_ids(dockyard) == []


def test_an_image_can_be_named_by_id_prefix_and_by_digest(dockyard, busybox_image):
    image = inspect(dockyard, "busybox")
    digest = image["RepoDigests"][0].split("@")[1]
    assert inspect(dockyard, image["Id"][7:15])["Id"] == image["Id"]
    assert inspect(dockyard, f"busybox@{digest}")["Id"] == image["Id"]


def test_retagging_a_name_leaves_the_old_image_nameless(dockyard, busybox_image, rootfs):
    old = image_ids(dockyard)[0]
    with open(os.path.join(rootfs, "new-file"), "w") as f:
        f.write("new\n")
    dockyard("import", rootfs, "busybox:latest")
    rows = [line.split() for line in dockyard("images").stdout.splitlines()[1:]]
    assert ["<none>", "<none>", old] in [row[:3] for row in rows]
    assert dockyard("image", "prune").returncode == 0
    assert old not in image_ids(dockyard)


def test_history_lists_the_import_step(dockyard, busybox_image):
    lines = dockyard("history", "busybox").stdout.splitlines()
    assert lines[0].split()[:2] == ["IMAGE", "CREATED"] and "import" in lines[1]


@pytest.mark.parametrize("name", ["UPPER", "a//b", "x:", "busybox@sha256:123", "-bad"])
def test_a_malformed_reference_is_refused(dockyard, rootfs, name):
    result = dockyard("import", rootfs, name)
    if name.startswith("-"):  # read as a flag: a command line that cannot be read is 125, as Docker's
        assert result.returncode == 125 and "hint:" in result.stderr
    else:
        assert is_user_error(result)
    assert image_ids(dockyard) == []


def test_an_unknown_image_is_an_error_with_a_hint(dockyard):
    for command in (["inspect", "nosuch"], ["rmi", "nosuch"], ["tag", "nosuch", "x"], ["save", "-o", "/dev/null", "nosuch"]):
        assert is_user_error(dockyard(*command)), command


def test_save_rmi_load_gives_back_the_same_image(dockyard, busybox_image, tmp_path):
    before = inspect(dockyard, "busybox")
    archive = str(tmp_path / "saved.tar")
    assert dockyard("save", "-o", archive, "busybox").returncode == 0
    dockyard("rmi", "busybox")
    result = dockyard("load", "-i", archive)
    assert result.stdout == "Loaded image: busybox:latest\n", result.stderr
    assert inspect(dockyard, "busybox")["Id"] == before["Id"]
    names = tarfile.open(archive).getnames()
    assert {"oci-layout", "index.json", "manifest.json"} <= set(names)


def test_load_reads_a_gzipped_archive_from_stdin(dockyard, busybox_image, tmp_path):
    archive = tmp_path / "saved.tar"
    dockyard("save", "-o", str(archive), "busybox")
    dockyard("rmi", "busybox")
    data = gzip.compress(archive.read_bytes())
    result = subprocess.run(dockyard.command("load"), input=data, capture_output=True, env=dockyard.impl.env())
    assert result.returncode == 0, result.stderr
    assert image_ids(dockyard)


def test_a_corrupted_layer_blob_is_detected_and_named(dockyard, busybox_image, tmp_path):
    layer = inspect(dockyard, "busybox")
    manifest = json.loads(open(os.path.join(dockyard.root, "images", "blobs", "sha256",
                                            layer["Descriptor"]["digest"][7:]), "rb").read())
    digest = manifest["layers"][0]["digest"]
    path = os.path.join(dockyard.root, "images", "blobs", "sha256", digest[7:])
    with open(path, "r+b") as f:
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 0xFF]))
    result = dockyard("save", "-o", str(tmp_path / "out.tar"), "busybox")
    assert is_user_error(result) and digest in result.stderr and "corrupt" in result.stderr
    assert not (tmp_path / "out.tar").exists()
    assert not (tmp_path / "out.tar.partial").exists()


def test_a_corrupted_uncompressed_layer_blob_is_refused_and_named_when_it_is_unpacked(dockyard, tmp_path):
    layer = tar_bytes(file("hello", b"hi\n" * 1000))  # uncompressed: the blob's digest is the diff id
    (tmp_path / "plain.tar").write_bytes(oci_archive([layer], name="plain:latest", gzipped=False))
    assert dockyard("load", "-i", str(tmp_path / "plain.tar")).returncode == 0
    with open(os.path.join(dockyard.root, "images", "blobs", "sha256", sha256(layer)[7:]), "r+b") as f:
        f.seek(1000)  # inside hello's data, so the tar itself still reads
        f.write(b"X")
    shutil.rmtree(os.path.join(dockyard.root, "layers", sha256(layer)[7:]))  # so that run unpacks it again
    result = dockyard("run", "--rm", "plain", "/hello")
    assert is_user_error(result) and sha256(layer) in result.stderr and "corrupt" in result.stderr
    assert not os.path.exists(os.path.join(dockyard.root, "layers", sha256(layer)[7:]))


def test_a_missing_config_blob_is_an_error_that_names_it(dockyard, busybox_image):
    config = inspect(dockyard, "busybox")["Id"]
    os.unlink(os.path.join(dockyard.root, "images", "blobs", "sha256", config[7:]))
    result = dockyard("inspect", "busybox")
    assert is_user_error(result) and config in result.stderr


def test_a_layer_that_does_not_match_its_diff_id_is_refused_by_load(dockyard, tmp_path):
    layer = tar_bytes(file("hello", b"hi\n"))
    archive = oci_archive([layer], name="liar:latest", diff_ids=[sha256(b"something else")])
    (tmp_path / "liar.tar").write_bytes(archive)
    result = dockyard("load", "-i", str(tmp_path / "liar.tar"))
    assert is_user_error(result) and "diff id" in result.stderr
    assert image_ids(dockyard) == [] and blobs(dockyard) == set()


def test_a_truncated_archive_leaves_the_store_unchanged(dockyard, busybox_image, tmp_path):
    archive = tmp_path / "saved.tar"
    dockyard("save", "-o", str(archive), "busybox")
    dockyard("tag", "busybox", "keep")
    dockyard("rmi", "busybox")
    before = (image_ids(dockyard), blobs(dockyard))
    (tmp_path / "cut.tar").write_bytes(archive.read_bytes()[:len(archive.read_bytes()) // 2])
    assert is_user_error(dockyard("load", "-i", str(tmp_path / "cut.tar")))
    assert (image_ids(dockyard), blobs(dockyard)) == before


# --- the smaller promises of docs/reference/cli.md ---------------------------------------

def test_image_ls_inspect_history_and_rm_are_the_same_as_images_inspect_history_and_rmi(dockyard, busybox_image):
    def rows(*argv: str) -> list[list[str]]:  # the columns that do not say "... ago"
        result = dockyard(*argv)
        assert result.returncode == 0, result.stderr
        return [line.split()[:3] + line.split()[-1:] for line in result.stdout.splitlines()]
    assert rows("image", "ls") == rows("images") and len(rows("images")) == 2
    assert json.loads(dockyard("image", "inspect", "busybox").stdout) == [inspect(dockyard, "busybox")]
    assert rows("image", "history", "busybox") == rows("history", "busybox") and len(rows("history", "busybox")) == 2
    result = dockyard("image", "rm", "busybox")
    assert result.returncode == 0 and "Deleted: sha256:" in result.stdout, result.stderr
    assert image_ids(dockyard) == []


def test_images_repo_lists_only_that_repository(dockyard, busybox_image):
    dockyard("tag", "busybox", "other:v1")
    rows = [line.split()[:2] for line in dockyard("images", "other").stdout.splitlines()[1:]]
    assert rows == [["other", "v1"]]
    assert dockyard("images", "-q", "nosuch").stdout == ""


def test_history_truncates_long_commands_and_no_trunc_shows_them_whole(dockyard, rootfs, tmp_path):
    long_path = str(tmp_path / ("a-rather-long-directory-name-" * 3))
    shutil.copytree(rootfs, long_path, symlinks=True)
    assert dockyard("import", long_path, "long").returncode == 0
    recorded = f"import {os.path.basename(long_path)}"  # the history names the directory imported
    assert recorded not in dockyard("history", "long").stdout
    assert recorded in dockyard("history", "--no-trunc", "long").stdout


def test_import_m_and_commit_m_record_a_comment_in_the_history(dockyard, rootfs):
    assert dockyard("import", "-m", "imported by hand", rootfs, "base").returncode == 0
    assert dockyard("run", "--name", "ctr", "base", "touch", "/new").returncode == 0
    assert dockyard("commit", "-m", "added a file", "ctr", "next").returncode == 0
    comments = [entry.get("comment") for entry in inspect_history(dockyard, "next")]
    assert comments == ["imported by hand", "added a file"]
    assert dockyard("rm", "ctr").returncode == 0


def inspect_history(dockyard, name: str) -> list[dict]:
    """The history entries of the image's config, oldest first."""
    config_digest = inspect(dockyard, name)["Id"]
    with open(os.path.join(dockyard.root, "images", "blobs", "sha256", config_digest[7:]), "rb") as f:
        return json.load(f)["history"]


def test_import_dash_reads_the_archive_from_stdin(dockyard, rootfs, tmp_path):
    with tarfile.open(tmp_path / "rootfs.tar", "w") as archive:
        archive.add(rootfs, arcname=".")
    with open(tmp_path / "rootfs.tar", "rb") as stdin:
        result = subprocess.run(dockyard.command("import", "-", "piped"), stdin=stdin, capture_output=True,
                                text=True, env=dockyard.impl.env(), cwd=os.path.dirname(dockyard.impl.path))
    assert result.returncode == 0, result.stderr
    assert dockyard("run", "--rm", "piped", "cat", "/etc/passwd").returncode == 0


def test_save_without_o_writes_the_archive_to_stdout_and_load_q_says_nothing(dockyard, busybox_image, tmp_path):
    with open(tmp_path / "saved.tar", "wb") as stdout:
        saved = subprocess.run(dockyard.command("save", "busybox"), stdout=stdout, stderr=subprocess.PIPE,
                               env=dockyard.impl.env(), cwd=os.path.dirname(dockyard.impl.path))
    assert saved.returncode == 0, saved.stderr
    assert {"oci-layout", "index.json"} <= set(tarfile.open(tmp_path / "saved.tar").getnames())
    before = inspect(dockyard, "busybox")["Id"]
    dockyard("rmi", "busybox")
    loaded = dockyard("load", "-q", "-i", str(tmp_path / "saved.tar"))
    assert loaded.returncode == 0 and loaded.stdout == "", loaded.stderr
    assert inspect(dockyard, "busybox")["Id"] == before


def test_image_prune_f_removes_a_nameless_image(dockyard, busybox_image, rootfs):
    old = image_ids(dockyard)[0]
    with open(os.path.join(rootfs, "new-file"), "w") as f:
        f.write("new\n")
    dockyard("import", rootfs, "busybox:latest")  # the old image loses its name
    assert dockyard("image", "prune", "-f").returncode == 0
    assert old not in image_ids(dockyard) and len(image_ids(dockyard)) == 1
