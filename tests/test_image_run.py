"""Chapter 05 on: `run IMAGE` applies the image, `commit` turns a container into one."""

import json
import os

import pytest

from conftest import needs_root, require_idmapped_mounts, failure_code
from oci_helpers import directory, file, oci_archive, symlink, tar_bytes

pytestmark = needs_root


def make_image(dockyard, rootfs: str, name: str, *changes: str) -> None:
    args = [arg for change in changes for arg in ("-c", change)]
    result = dockyard("import", *args, rootfs, name)
    assert result.returncode == 0, result.stderr


def output(dockyard, *args: str) -> str:
    result = dockyard(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_an_imported_image_runs(dockyard, busybox_image):
    assert output(dockyard, "run", "--rm", "busybox", "echo", "hello") == "hello\n"
    assert output(dockyard, "run", "--rm", "busybox:latest", "cat", "/etc/passwd").startswith("root:")


def test_an_image_runs_by_id_and_by_digest(dockyard, busybox_image):
    image = json.loads(output(dockyard, "inspect", "busybox"))[0]
    digest = image["RepoDigests"][0].split("@")[1]
    assert output(dockyard, "run", "--rm", image["Id"][7:19], "echo", "by-id") == "by-id\n"
    assert output(dockyard, "run", "--rm", f"busybox@{digest}", "echo", "by-digest") == "by-digest\n"


def test_an_unknown_image_is_an_error_with_a_hint(dockyard):
    # final pulls a missing image first: on a loopback port nothing listens on, that fails too.
    result = dockyard("run", "--rm", "127.0.0.1:1/nosuch", "true")
    assert result.returncode == failure_code(result) and "no such image" in result.stderr and "hint:" in result.stderr


COMBINATIONS = [  # (Entrypoint change, Cmd change, run arguments, expected output)
    (None, 'CMD ["echo", "from-cmd"]', [], "from-cmd\n"),
    (None, 'CMD ["echo", "from-cmd"]', ["echo", "from-args"], "from-args\n"),
    (None, "CMD echo shell form $((1+1))", [], "shell form 2\n"),
    ('ENTRYPOINT ["echo", "ep"]', 'CMD ["cmd"]', [], "ep cmd\n"),
    ('ENTRYPOINT ["echo", "ep"]', 'CMD ["cmd"]', ["args"], "ep args\n"),
    ('ENTRYPOINT ["echo", "ep"]', 'CMD ["cmd"]', ["--entrypoint", "echo"], "\n"),
    ('ENTRYPOINT ["echo", "ep"]', 'CMD ["cmd"]', ["--entrypoint", "echo", "x"], "x\n"),
    ('ENTRYPOINT ["echo", "ep"]', None, [], "ep\n"),
]


@pytest.mark.parametrize("entrypoint, cmd, args, expected", COMBINATIONS)
def test_entrypoint_and_cmd_combine_as_in_docker(dockyard, rootfs, entrypoint, cmd, args, expected):
    make_image(dockyard, rootfs, "combo", *[c for c in (entrypoint, cmd) if c])
    flags = [a for a in args[:2] if args[:1] == ["--entrypoint"]]
    rest = args[2:] if flags else args
    assert output(dockyard, "run", "--rm", *flags, "combo", *rest) == expected


def test_an_image_without_a_command_needs_one_on_the_command_line(dockyard, rootfs):
    make_image(dockyard, rootfs, "nocmd")
    result = dockyard("run", "--rm", "nocmd")
    assert result.returncode == failure_code(result) and "no command" in result.stderr and "hint:" in result.stderr


def test_env_and_workdir_come_from_the_image_and_the_command_line_wins(dockyard, rootfs):
    make_image(dockyard, rootfs, "envy", "ENV GREETING=hello PATH=/bin:/sbin", "WORKDIR /srv/app")
    out = output(dockyard, "run", "--rm", "envy", "sh", "-c", 'echo "$GREETING $PATH"; pwd')
    assert out == "hello /bin:/sbin\n/srv/app\n"
    out = output(dockyard, "run", "--rm", "-e", "GREETING=bye", "-w", "/tmp", "envy", "sh", "-c", 'echo $GREETING; pwd')
    assert out == "bye\n/tmp\n"


def test_the_images_user_is_looked_up_in_its_own_passwd_file(dockyard, rootfs):
    with open(os.path.join(rootfs, "etc", "passwd"), "a") as f:
        f.write("app:x:1234:4321:app:/home/app:/bin/sh\n")
    with open(os.path.join(rootfs, "etc", "group"), "a") as f:
        f.write("app:x:4321:\nextra:x:777:app\n")
    make_image(dockyard, rootfs, "withuser", "USER app")
    assert output(dockyard, "run", "--rm", "withuser", "sh", "-c", "id -u; id -g; id -G; echo $HOME") == \
        "1234\n4321\n4321 777\n/home/app\n"
    assert output(dockyard, "run", "--rm", "-u", "root", "withuser", "id", "-u") == "0\n"
    assert output(dockyard, "run", "--rm", "-u", "nobody:app", "withuser", "id") == \
        "uid=65534(nobody) gid=4321(app) groups=4321(app)\n"
    assert output(dockyard, "run", "--rm", "-u", "4000:4001", "withuser", "id", "-u") == "4000\n"
    assert output(dockyard, "run", "--rm", "--user", "4000:4001", "withuser", "id", "-g") == "4001\n"


def test_an_unknown_user_is_an_error_with_a_hint(dockyard, busybox_image):
    result = dockyard("run", "--rm", "-u", "ghost", "busybox", "true")
    assert result.returncode == failure_code(result) and "ghost" in result.stderr and "hint:" in result.stderr


@pytest.mark.parametrize("driver", ["overlay", "vfs"])
def test_run_commit_run_sees_the_changes(dockyard, busybox_image, driver):
    script = "echo changed > /etc/motd; rm /bin/ls; mkdir /srv; echo x > /srv/f; rm -rf /usr/sbin; mkdir /usr/sbin"
    assert dockyard("--storage-driver", driver, "run", "--name", "c1", "busybox", "sh", "-c", script).returncode == 0
    result = dockyard("--storage-driver", driver, "commit", "-c", 'CMD ["cat", "/etc/motd"]', "c1", "committed:v1")
    assert result.returncode == 0, result.stderr
    assert output(dockyard, "--storage-driver", driver, "run", "--rm", "committed:v1") == "changed\n"
    check = "test -e /bin/ls && echo ls || echo no-ls; cat /srv/f; ls /usr/sbin | wc -l"
    assert output(dockyard, "--storage-driver", driver, "run", "--rm", "committed:v1", "sh", "-c", check) == \
        "no-ls\nx\n0\n"
    history = output(dockyard, "history", "committed:v1").splitlines()
    assert "commit" in history[1] and "import" in history[2]
    dockyard("rm", "c1")


@pytest.mark.parametrize("driver", ["overlay", "vfs"])
def test_a_commit_of_root_with_userns_records_the_owners_seen_inside(dockyard, busybox_image, driver):
    # On disk the container's files belong to the range (100000...); the layer must hold them unshifted.
    if driver == "overlay":
        require_idmapped_mounts(os.path.dirname(dockyard.root))  # ask the kernel, not the engine
    script = "echo me:x:5:5::/:/bin/sh >> /etc/passwd; echo x > /f; chown 5:5 /f"
    result = dockyard("--storage-driver", driver, "run", "--userns", "--name", "c1", "busybox", "sh", "-c", script)
    assert result.returncode == 0, result.stderr
    assert output(dockyard, "diff", "c1").split("\n") == ["C /etc", "C /etc/passwd", "A /f", ""]
    assert dockyard("commit", "c1", "committed:v1").returncode == 0
    out = output(dockyard, "--storage-driver", driver, "run", "--rm", "committed:v1",
                 "stat", "-c", "%n %u:%g", "/etc", "/etc/passwd", "/f")
    assert out.splitlines() == ["/etc 0:0", "/etc/passwd 0:0", "/f 5:5"]
    dockyard("rm", "c1")


def test_commit_of_the_same_changes_gives_the_same_layer(dockyard, busybox_image):
    for name in ("c1", "c2"):
        dockyard("run", "--name", name, "busybox", "sh", "-c", "echo same > /same; touch -d @1700000000 /same")
    layers = [json.loads(output(dockyard, "inspect", output(dockyard, "commit", name).strip()))[0]["RootFS"]["Layers"]
              for name in ("c1", "c2")]
    assert layers[0] == layers[1]
    dockyard("rm", "c1", "c2")


def test_save_rmi_load_run_round_trip(dockyard, busybox_image, tmp_path):
    archive = str(tmp_path / "busybox.tar")
    assert dockyard("save", "-o", archive, "busybox").returncode == 0
    assert dockyard("rmi", "busybox").returncode == 0
    assert dockyard("image", "prune").returncode == 0
    assert os.listdir(os.path.join(dockyard.root, "layers")) == []
    assert dockyard("load", "-i", archive).returncode == 0
    assert output(dockyard, "run", "--rm", "busybox", "echo", "back") == "back\n"


@pytest.mark.parametrize("driver", ["overlay", "vfs"])
def test_whiteouts_across_three_layers_hide_files_in_the_container(dockyard, busybox_rootfs, tmp_path, driver):
    base = tar_bytes(*[file(f"bin/{n}", open(os.path.join(busybox_rootfs, "bin", "busybox"), "rb").read(), mode=0o755)
                       for n in ["busybox"]], symlink("bin/sh", "busybox"), symlink("bin/ls", "busybox"),
                     directory("proc"), file("a", b"a1\n"), directory("b"), file("b/old", b"old\n"),
                     directory("d"), file("d/e", b"e\n"))
    middle = tar_bytes(file(".wh.a"), directory("b"), file("b/.wh..wh..opq"), file("b/new", b"new\n"))
    top = tar_bytes(file("a", b"a3\n"), file(".wh.d"))
    (tmp_path / "three.tar").write_bytes(oci_archive([base, middle, top], name="three:latest"))
    assert dockyard("load", "-i", str(tmp_path / "three.tar")).returncode == 0
    out = output(dockyard, "--storage-driver", driver, "run", "--rm", "three", "/bin/sh", "-c",
                 "cat /a; ls /b; test -e /d && echo d-present || echo d-gone")
    assert out == "a3\nnew\nd-gone\n"


def test_rmi_refuses_an_image_that_a_container_uses_unless_forced(dockyard, busybox_image):
    dockyard("run", "--name", "user", "busybox", "true")
    result = dockyard("rmi", "busybox")
    assert result.returncode == failure_code(result) and "in use" in result.stderr and "hint:" in result.stderr
    assert dockyard("rmi", "-f", "busybox").returncode == 0
    assert dockyard("image", "prune").returncode == 0
    assert output(dockyard, "start", "-a", "user") == ""  # its layers were kept for it
    dockyard("rm", "user")


def test_the_images_volumes_become_anonymous_volumes_that_run_rm_removes(dockyard, rootfs):
    make_image(dockyard, rootfs, "withvolume", "VOLUME /data", "VOLUME /named")
    assert output(dockyard, "run", "--rm", "-v", "kept:/named", "withvolume", "sh", "-c",
                  "echo x > /data/f; echo y > /named/f; grep -c ' /data ' /proc/mounts") == "1\n"
    assert output(dockyard, "volume", "ls", "-q") == "kept\n"  # the anonymous one went with the container
    assert output(dockyard, "run", "--name", "keep", "withvolume", "true") == ""
    assert dockyard("rm", "keep").returncode == 0
    assert len(output(dockyard, "volume", "ls", "-q").split()) == 3  # without --rm they stay, as docker rm keeps them


def commit_config(dockyard, container: str, *changes: str) -> dict:
    args = [arg for change in changes for arg in ("-c", change)]
    image = output(dockyard, "commit", *args, container).strip()
    return json.loads(output(dockyard, "inspect", image))[0]["Config"]


def test_commit_records_the_command_env_workdir_and_user_the_container_ran_with(dockyard, rootfs):
    make_image(dockyard, rootfs, "base", 'CMD ["sh"]', "ENV KEEP=image SET=image", "WORKDIR /srv", "LABEL a=b")
    assert output(dockyard, "run", "--name", "c1", "-e", "SET=run", "-e", "NEW=1", "-w", "/tmp", "-u", "nobody",
                  "base", "echo", "hi") == "hi\n"
    config = commit_config(dockyard, "c1")
    assert config["Cmd"] == ["echo", "hi"] and "Entrypoint" not in config
    assert config["Env"] == ["SET=run", "NEW=1", "KEEP=image"]
    assert config["WorkingDir"] == "/tmp" and config["User"] == "nobody" and config["Labels"] == {"a": "b"}
    assert commit_config(dockyard, "c1", 'CMD ["true"]', "USER root")["Cmd"] == ["true"]
    assert output(dockyard, "run", "--name", "d1", "base") == ""
    config = commit_config(dockyard, "d1")
    assert config["Cmd"] == ["sh"] and config["WorkingDir"] == "/srv" and config["Env"] == ["KEEP=image", "SET=image"]
    dockyard("rm", "c1", "d1")


def test_commit_records_entrypoint_and_an_image_made_so_runs_the_same_command(dockyard, rootfs):
    make_image(dockyard, rootfs, "base", 'ENTRYPOINT ["false"]', 'CMD ["dropped"]')
    assert output(dockyard, "run", "--name", "c1", "--entrypoint", "echo", "base", "again") == "again\n"
    config = commit_config(dockyard, "c1")
    assert config["Entrypoint"] == ["echo"] and config["Cmd"] == ["again"]
    dockyard("tag", output(dockyard, "commit", "c1").strip(), "made")
    assert output(dockyard, "run", "--rm", "made") == "again\n"
    dockyard("rm", "c1")


def test_an_images_volume_starts_with_the_images_files_and_their_owners(dockyard, rootfs):
    os.makedirs(os.path.join(rootfs, "srv", "app", "sub"))
    with open(os.path.join(rootfs, "srv", "app", "sub", "f"), "w") as f:
        f.write("from the image\n")
    os.chown(os.path.join(rootfs, "srv", "app", "sub", "f"), 1234, 4321)
    os.chmod(os.path.join(rootfs, "srv", "app", "sub", "f"), 0o640)
    os.chown(os.path.join(rootfs, "srv", "app"), 1234, 4321)
    os.chmod(os.path.join(rootfs, "srv", "app"), 0o750)
    os.symlink("/srv/app", os.path.join(rootfs, "app"))
    make_image(dockyard, rootfs, "withdata", "VOLUME /app")
    check = "cat /app/sub/f; stat -c '%u:%g %a' /app/ /app/sub/f; echo new > /app/new"
    assert output(dockyard, "run", "--rm", "-v", "data:/app", "withdata", "sh", "-c", check) == \
        "from the image\n1234:4321 750\n1234:4321 640\n"
    # An existing, non-empty volume is never filled again.
    assert output(dockyard, "run", "--rm", "-v", "data:/app", "withdata", "sh", "-c", "rm -r /app/sub") == ""
    assert output(dockyard, "run", "--rm", "-v", "data:/app", "withdata", "ls", "/app") == "new\n"
    assert output(dockyard, "run", "--rm", "withdata", "cat", "/app/sub/f") == "from the image\n"


# --- Docker's behaviour, line by line ----------------------------------------------------------

def test_an_explicit_workdir_wins_over_the_images_even_when_it_is_slash(dockyard, rootfs):
    make_image(dockyard, rootfs, "intmp", "WORKDIR /tmp")
    assert output(dockyard, "run", "--rm", "intmp", "pwd") == "/tmp\n"
    assert output(dockyard, "run", "--rm", "-w", "/", "intmp", "pwd") == "/\n"


def test_info_counts_images_once_each_and_containers_by_state(dockyard, busybox_image):
    assert dockyard("tag", "busybox", "second:name").returncode == 0
    dockyard("run", "--name", "done", "busybox", "true")
    rows = dict(line.split(": ", 1) for line in output(dockyard, "info").splitlines() if ": " in line)
    assert rows["Images"] == "1"
    assert (rows["Containers"], rows[" Running"], rows[" Paused"], rows[" Stopped"]) == ("1", "0", "0", "1")
    dockyard("rm", "done")


def test_rm_v_removes_the_containers_anonymous_volumes_and_keeps_named_ones(dockyard, rootfs):
    make_image(dockyard, rootfs, "withvolume", "VOLUME /data")
    assert output(dockyard, "run", "--name", "keep", "-v", "named:/named", "withvolume", "true") == ""
    assert len(output(dockyard, "volume", "ls", "-q").split()) == 2
    assert dockyard("rm", "-v", "keep").returncode == 0
    assert output(dockyard, "volume", "ls", "-q") == "named\n"


def test_commit_with_a_new_entrypoint_clears_cmd_unless_a_cmd_change_comes_first(dockyard, rootfs):
    make_image(dockyard, rootfs, "base", 'CMD ["sh"]')
    assert output(dockyard, "run", "--name", "c1", "base", "true") == ""
    assert commit_config(dockyard, "c1", 'ENTRYPOINT ["echo"]').get("Cmd") is None
    config = commit_config(dockyard, "c1", 'CMD ["kept"]', 'ENTRYPOINT ["echo"]')
    assert (config["Entrypoint"], config["Cmd"]) == (["echo"], ["kept"])
    dockyard("rm", "c1")


def test_rmi_of_an_extra_name_of_an_image_in_use_removes_that_name_only(dockyard, busybox_image):
    assert dockyard("tag", "busybox", "foo:1").returncode == 0
    dockyard("run", "--name", "user", "busybox", "true")
    result = dockyard("rmi", "foo:1")
    assert (result.returncode, result.stdout) == (0, "Untagged: foo:1\n"), result.stderr
    assert dockyard("inspect", "foo:1").returncode != 0
    refused = dockyard("rmi", "busybox")  # the last name of an image in use stays protected
    assert refused.returncode == failure_code(refused) and "in use" in refused.stderr
    dockyard("rm", "user")


def test_a_missing_image_tells_an_ordinary_user_that_roots_images_are_apart(nobody):
    result = nobody("inspect", "busybox")
    assert result.returncode == failure_code(result) and "no such object: busybox" in result.stderr
    assert "you are not root" in result.stderr and "/var/lib/dockyard" in result.stderr


def blob_path(dockyard, digest: str) -> str:
    return os.path.join(dockyard.root, "images", "blobs", "sha256", digest.split(":")[1])


def test_a_missing_blob_breaks_only_its_image_which_images_marks_and_rmi_f_removes(dockyard, busybox_image):
    dockyard("run", "--name", "cx", "busybox", "true")  # unpacks busybox's layer
    assert dockyard("commit", "-c", "ENV WHICH=second", "cx", "second").returncode == 0  # two images, even
    assert dockyard("commit", "-c", "ENV WHICH=third", "cx", "third").returncode == 0   # within one second
    dockyard("rm", "cx")
    inspect = lambda name: json.loads(output(dockyard, "inspect", name))[0]
    second_id, third = inspect("second")["Id"], inspect("third")
    os.unlink(blob_path(dockyard, third["Id"]))  # third's config: its own blob, gone
    with open(os.path.join(dockyard.root, "images", "index.json")) as f:
        busybox_manifest = next(m["digest"] for m in json.load(f)["manifests"]
                                if m["annotations"]["org.opencontainers.image.ref.name"] == "busybox:latest")
    with open(blob_path(dockyard, busybox_manifest)) as f:
        shared_layer = json.load(f)["layers"][0]["digest"]
    os.unlink(blob_path(dockyard, shared_layer))  # busybox's layer blob: unpacked already
    assert output(dockyard, "run", "--rm", "busybox", "echo", "a") == "a\n"
    assert output(dockyard, "run", "--rm", second_id[7:19], "echo", "b") == "b\n"  # an ID prefix still resolves
    listed = dockyard("images")
    assert listed.returncode == 0 and "damaged" in listed.stderr
    rows = {line.split()[0]: line for line in listed.stdout.splitlines()[1:]}
    assert "damaged" in rows["third"] and "damaged" in rows["busybox"]
    for name in ("third", "busybox"):
        removed = dockyard("rmi", "-f", name)
        assert removed.returncode == 0 and f"Untagged: {name}:latest" in removed.stdout, removed.stderr
    assert output(dockyard, "run", "--rm", "second", "echo", "c") == "c\n"
    assert dockyard("image", "prune").returncode == 0
    assert output(dockyard, "run", "--rm", "second", "echo", "d") == "d\n"
