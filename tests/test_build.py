"""Chapter 07 on: `build` turns a Dockerfile and a context into an image, step by cached step.

Every build starts from a busybox image imported into the test's own --root;
the images are then run with `run`, the way a user checks a build.
"""

import gzip
import io
import os
import socket
import tarfile
import textwrap
import time
import urllib.request

import pytest

from conftest import needs_root, failure_code

pytestmark = needs_root


@pytest.fixture
def base(dockyard, busybox_rootfs):
    """The test's --root, with busybox imported as `busybox`."""
    result = dockyard("import", busybox_rootfs, "busybox")
    assert result.returncode == 0, result.stderr
    return dockyard


def write_context(path, dockerfile: str, files: dict[str, str | bytes] = ()) -> str:
    os.makedirs(path, exist_ok=True)
    (path / "Dockerfile").write_text(textwrap.dedent(dockerfile).lstrip("\n"))
    for name, content in dict(files).items():
        target = path / name
        os.makedirs(target.parent, exist_ok=True)
        target.write_bytes(content if isinstance(content, bytes) else content.encode())
    return str(path)


def build(dockyard, context: str, *args: str, ok: bool = True):
    result = dockyard("build", *args, context, timeout=120)
    if ok:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def run(dockyard, *args: str) -> str:
    result = dockyard("run", "--rm", *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


# --- the seed's examples -------------------------------------------------------------

def test_an_image_with_cmd_echo_prints_hello_world(base, tmp_path):
    context = write_context(tmp_path / "ctx", 'FROM busybox\nCMD echo "Hello world"\n')
    out = build(base, context, "-t", "hello").stdout
    assert "Step 1/2 : FROM busybox" in out and "Step 2/2 : CMD echo \"Hello world\"" in out
    assert "Successfully tagged hello:latest" in out
    assert run(base, "hello") == "Hello world\n"


def test_an_app_copied_into_the_image_runs_as_its_command(base, tmp_path):
    context = write_context(tmp_path / "ctx", """
        FROM busybox
        COPY app.sh /app/
        RUN chmod +x /app/app.sh
        CMD ["/app/app.sh", "from the app"]
    """, {"app.sh": '#!/bin/sh\necho "hello $1"\n'})
    build(base, context, "-t", "app")
    assert run(base, "app") == "hello from the app\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_httpd_example_serves_its_page_on_loopback(base, tmp_path):
    port = free_port()
    context = write_context(tmp_path / "ctx", f"""
        FROM busybox
        ADD start.sh /start.sh
        COPY index.html /www/
        RUN chmod -v +x /start.sh
        EXPOSE {port}
        CMD ["/start.sh"]
    """, {"start.sh": f"#!/bin/sh\nexec httpd -f -p 127.0.0.1:{port} -h /www\n",
          "index.html": "<h1>built by dockyard</h1>\n"})
    out = build(base, context, "-t", "web").stdout
    assert "mode of '/start.sh' changed" in out  # RUN's own output is shown
    server = base.popen("run", "--rm", "--init", "--network", "host", "web")  # --init: PID 1 ignores SIGTERM
    try:
        page = fetch(f"http://127.0.0.1:{port}/index.html")
        assert "built by dockyard" in page
    finally:
        server.terminate()
        server.communicate(timeout=30)


def fetch(url: str) -> str:
    for _ in range(100):
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.read().decode()
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing served at {url}")


def test_the_copy_then_build_shape_builds_the_app_inside_the_image(base, tmp_path):
    # busybox has no make: a build script plays its part in the FROM/COPY/RUN/CMD shape.
    context = write_context(tmp_path / "ctx", """
        FROM busybox
        COPY . /app
        RUN sh /app/build.sh /app
        CMD ["/app/out/hello"]
    """, {"build.sh": 'mkdir -p "$1/out" && cp "$1/src/hello.sh" "$1/out/hello" && chmod +x "$1/out/hello"\n',
          "src/hello.sh": "#!/bin/sh\necho built and running\n"})
    build(base, context, "-t", "made")
    assert run(base, "made") == "built and running\n"


# --- the cache -----------------------------------------------------------------------------

CACHE_DOCKERFILE = """
    FROM busybox
    RUN echo one > /one
    COPY a.txt /a.txt
    RUN cat /a.txt > /copy.txt
    COPY b.txt /b.txt
    CMD ["cat", "/copy.txt", "/b.txt"]
"""


def step_lines(output: str) -> list[str]:
    """For each step after FROM: 'CACHED' or 'RAN'."""
    result, lines = [], output.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("Step ") and " : FROM " not in line:
            rest = next(l for l in lines[i + 1:] if l.startswith(" ---> "))
            result.append("CACHED" if "CACHED" in rest else "RAN")
    return result


def test_a_second_build_takes_every_step_from_the_cache_and_gives_the_same_image(base, tmp_path):
    context = write_context(tmp_path / "ctx", CACHE_DOCKERFILE, {"a.txt": "a\n", "b.txt": "b\n"})
    first = build(base, context, "-t", "c1").stdout
    second = build(base, context, "-t", "c2").stdout
    assert step_lines(first) == ["RAN"] * 5
    assert step_lines(second) == ["CACHED"] * 5
    assert first.splitlines()[-2] == second.splitlines()[-2]  # Successfully built <same id>


def test_changing_one_file_rebuilds_from_the_first_step_that_uses_it(base, tmp_path):
    context = write_context(tmp_path / "ctx", CACHE_DOCKERFILE, {"a.txt": "a\n", "b.txt": "b\n"})
    build(base, context, "-t", "c")
    (tmp_path / "ctx" / "a.txt").write_text("changed\n")
    assert step_lines(build(base, context, "-t", "c").stdout) == ["CACHED", "RAN", "RAN", "RAN", "RAN"]
    assert run(base, "c") == "changed\nb\n"


def test_touching_a_file_without_changing_it_keeps_the_cache(base, tmp_path):
    context = write_context(tmp_path / "ctx", CACHE_DOCKERFILE, {"a.txt": "a\n", "b.txt": "b\n"})
    build(base, context, "-t", "c")
    os.utime(tmp_path / "ctx" / "a.txt", (1, 1))
    assert step_lines(build(base, context, "-t", "c").stdout) == ["CACHED"] * 5


def test_a_file_rewritten_with_its_size_and_mtime_kept_still_misses_the_cache(base, tmp_path):
    context = write_context(tmp_path / "ctx", CACHE_DOCKERFILE, {"a.txt": "a\n", "b.txt": "b\n"})
    a = tmp_path / "ctx" / "a.txt"
    # The builder remembers the digest of a file changed over a second ago (a younger one it reads
    # again every time): wait, so that the first build remembers a.txt's and the test means something.
    time.sleep(1.5)
    build(base, context, "-t", "c")
    kept = os.stat(a)
    a.write_text("z\n")  # the same size, in place (the same inode) ...
    os.utime(a, ns=(kept.st_atime_ns, kept.st_mtime_ns))  # ... and the same mtime: only the ctime moved
    assert step_lines(build(base, context, "-t", "c").stdout) == ["CACHED", "RAN", "RAN", "RAN", "RAN"]
    assert run(base, "c") == "z\nb\n"


def test_no_cache_runs_every_step_again(base, tmp_path):
    context = write_context(tmp_path / "ctx", CACHE_DOCKERFILE, {"a.txt": "a\n", "b.txt": "b\n"})
    build(base, context, "-t", "c")
    assert step_lines(build(base, context, "--no-cache", "-t", "c").stdout) == ["RAN"] * 5


def test_a_changed_build_arg_misses_the_cache_of_the_run_that_sees_it(base, tmp_path):
    context = write_context(tmp_path / "ctx", "FROM busybox\nRUN true\nARG V=1\nRUN echo $V > /v\n")
    build(base, context, "-t", "a")
    out = build(base, context, "-t", "a", "--build-arg", "V=2").stdout
    assert step_lines(out)[0] == "CACHED" and step_lines(out)[-1] == "RAN"
    assert run(base, "a", "cat", "/v") == "2\n"


# --- stages, variables, users ---------------------------------------------------------------

def test_a_multi_stage_build_copies_only_the_result_from_the_build_stage(base, tmp_path):
    context = write_context(tmp_path / "ctx", """
        FROM busybox AS build
        RUN mkdir /out && echo artifact > /out/result.txt && echo junk > /junk
        FROM busybox
        COPY --from=build /out/result.txt /result.txt
        CMD ["sh", "-c", "cat /result.txt; ls /junk 2>/dev/null || echo no junk"]
    """)
    build(base, context, "-t", "multi")
    assert run(base, "multi") == "artifact\nno junk\n"


def test_target_builds_only_up_to_the_named_stage(base, tmp_path):
    context = write_context(tmp_path / "ctx", """
        FROM busybox AS first
        RUN echo first > /stage
        FROM busybox AS second
        RUN false
    """)
    build(base, context, "--target", "first", "-t", "t")
    assert run(base, "t", "cat", "/stage") == "first\n"


def test_env_and_arg_expand_in_later_instructions(base, tmp_path):
    context = write_context(tmp_path / "ctx", """
        ARG TAG=latest
        FROM busybox:${TAG}
        ARG NAME=world
        ENV GREETING="hello ${NAME}" DIR=/srv
        WORKDIR ${DIR}/app
        ENV SUFFIX=${MISSING:-default}
        RUN echo "$GREETING $SUFFIX" > greeting.txt
        CMD ["sh", "-c", "cat /srv/app/greeting.txt; echo ${NAME:-unset}"]
    """)
    build(base, context, "-t", "vars", "--build-arg", "NAME=docker")
    assert run(base, "vars") == "hello docker default\nunset\n"  # ARGs do not stay in the image


def test_user_and_workdir_apply_to_run_steps_and_to_the_image(base, tmp_path):
    context = write_context(tmp_path / "ctx", """
        FROM busybox
        WORKDIR /work
        RUN pwd > /where && chmod 777 /work
        USER nobody
        RUN id -u > /work/uid
        CMD ["sh", "-c", "cat /where /work/uid; id -u; pwd"]
    """)
    build(base, context, "-t", "who")
    assert run(base, "who") == "/work\n65534\n65534\n/work\n"


def test_dockerignore_keeps_excluded_files_out_of_copy(base, tmp_path):
    context = write_context(tmp_path / "ctx", "FROM busybox\nCOPY . /ctx\n", {
        ".dockerignore": "secret.txt\nlogs\n!logs/keep.log\n**/*.tmp\n",
        "secret.txt": "no", "logs/a.log": "no", "logs/keep.log": "yes", "src/x.tmp": "no", "src/x.c": "yes"})
    build(base, context, "-t", "ign")
    listing = run(base, "ign", "find", "/ctx", "-type", "f").split()
    assert sorted(listing) == ["/ctx/.dockerignore", "/ctx/Dockerfile", "/ctx/logs/keep.log", "/ctx/src/x.c"]


def tar_gz(files: dict[str, str]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, text in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(text)
            tar.addfile(info, io.BytesIO(text.encode()))
    return gzip.compress(raw.getvalue())


def test_add_unpacks_a_local_tar_archive(base, tmp_path):
    context = write_context(tmp_path / "ctx", "FROM busybox\nADD files.tar.gz /opt/\nCOPY files.tar.gz /kept/\n",
                            {"files.tar.gz": tar_gz({"pkg/readme.txt": "unpacked\n"})})
    build(base, context, "-t", "tar")
    assert run(base, "tar", "cat", "/opt/pkg/readme.txt") == "unpacked\n"
    assert run(base, "tar", "ls", "/kept") == "files.tar.gz\n"  # COPY never unpacks


def test_heredocs_become_scripts_and_files(base, tmp_path):
    context = write_context(tmp_path / "ctx", """
        FROM busybox
        ARG WHO=heredoc
        RUN <<EOF
        echo one > /one
        echo two >> /one
        EOF
        COPY <<EOF /greeting.txt
        hello ${WHO}
        EOF
        COPY <<'EOF' /raw.txt
        hello ${WHO}
        EOF
    """)
    build(base, context, "-t", "here")
    assert run(base, "here", "cat", "/one", "/greeting.txt", "/raw.txt") == "one\ntwo\nhello heredoc\nhello ${WHO}\n"


# --- failures ----------------------------------------------------------------------------------

@pytest.mark.bad_input
def test_a_parse_error_stops_the_build_with_its_line_number(base, tmp_path):
    context = write_context(tmp_path / "ctx", "FROM busybox\nRUN true\nCOPY --form=x a /b\n")
    result = build(base, context, ok=False)
    assert result.returncode == failure_code(result) and "Dockerfile:3" in result.stderr and "hint:" in result.stderr


@pytest.mark.parametrize("text, line, message", [
    ("FROM busybox\nRUNN echo\n", 2, "unknown instruction: RUNN"),
    ("FROM busybox\nFOO bar\n", 2, "unknown instruction: FOO"),
    ("FROM busybox b\n", 1, "FROM requires either one or three arguments"),
    ("FROM busybox AS 1st\n", 1, "invalid name for build stage"),
    ("FROM busybox\nCOPY onlyone\n", 2, "COPY requires at least two arguments"),
    ("FROM busybox\nCOPY --CHOWN=1:1 a b\n", 2, "unknown flag: CHOWN"),
    ("FROM busybox\nCOPY --user=x a b\n", 2, "unknown flag: user"),
    ("FROM busybox\nENV --x=1 A=b\n", 2, "unknown flag: x"),
    ("FROM busybox\nCOPY --chown a b\n", 2, "missing a value on flag: chown"),
    ("FROM busybox\nCOPY --from=a --from=b x /y\n", 2, "duplicate flag specified: from"),
    ("FROM busybox\nCOPY --link=maybe x /y\n", 2, "expecting boolean value"),
    ("FROM busybox\nENV\n", 2, "ENV requires at least one argument"),
    ("FROM busybox\nRUN\n", 2, "RUN requires at least one argument"),
    ("FROM busybox\nONBUILD\n", 2, "ONBUILD requires at least one argument"),
    ("FROM busybox\nONBUILD FROM b\n", 2, "isn't allowed as an ONBUILD trigger"),
    ("FROM busybox\nSHELL sh -c\n", 2, "SHELL requires the arguments to be in JSON form"),
    ("FROM busybox\nHEALTHCHECK WHEN x\n", 2, "Unknown type"),
    ("FROM busybox\nHEALTHCHECK CMD-SHELL true\n", 2, "Unknown type"),
    ("FROM busybox\nHEALTHCHECK --interval=5s\n", 2, "HEALTHCHECK requires at least one argument"),
    ("FROM busybox\nHEALTHCHECK --interval=soon CMD true\n", 2, "invalid duration"),
    ("FROM busybox\nWORKDIR\n", 2, "WORKDIR requires exactly one argument"),
])
def test_the_builder_refuses_what_it_cannot_build_at_its_line_before_any_step(dockyard, tmp_path, text, line, message):
    # BuildKit's parser accepts all of these; its instruction layer refuses them, and so does ours.
    context = write_context(tmp_path / "ctx", text)
    result = build(dockyard, context, ok=False)
    assert result.returncode == failure_code(result) and f"Dockerfile:{line}:" in result.stderr and message in result.stderr
    assert "hint:" in result.stderr and "Step 1/" not in result.stdout


def test_an_unknown_instruction_gets_a_suggestion(dockyard, tmp_path):
    result = build(dockyard, write_context(tmp_path / "ctx", "FROM busybox\nRUNN echo\n"), ok=False)
    assert "did you mean RUN" in result.stderr


def test_a_failing_run_stops_the_build_with_its_exit_code_and_output(base, tmp_path):
    context = write_context(tmp_path / "ctx", "FROM busybox\nRUN echo about to fail; exit 3\nRUN echo never\n")
    result = build(base, context, "-t", "bad", ok=False)
    # The step header repeats the instruction: RUN's own output is a line of its own.
    assert result.returncode == 3 and "about to fail" in result.stdout.splitlines()
    assert not any(line.startswith("Step 3/3") for line in result.stdout.splitlines())
    assert "never" not in result.stdout.splitlines()
    assert "non-zero code: 3" in result.stderr
    assert base("inspect", "bad").returncode != 0


@pytest.mark.bad_input
def test_copy_refuses_a_path_outside_the_context(base, tmp_path):
    (tmp_path / "outside.txt").write_text("secret")
    context = write_context(tmp_path / "ctx", "FROM busybox\nCOPY ../outside.txt /x\n")
    result = build(base, context, ok=False)
    assert result.returncode == failure_code(result) and "outside the build context" in result.stderr


@pytest.mark.bad_input
def test_a_symlink_pointing_out_of_the_context_is_never_followed_out(base, tmp_path):
    context = write_context(tmp_path / "ctx", "FROM busybox\nCOPY link/passwd /x\n")
    os.symlink("/etc", tmp_path / "ctx" / "link")
    result = build(base, context, ok=False)
    assert result.returncode == failure_code(result) and "not found in the build context" in result.stderr


# --- the image config --------------------------------------------------------------------

def inspect_config(dockyard, name: str) -> dict:
    import json
    result = dockyard("inspect", name)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)[0]


def test_metadata_instructions_end_up_in_the_image_config_as_docker_records_them(base, tmp_path):
    context = write_context(tmp_path / "ctx", """
        FROM busybox
        MAINTAINER Jane <jane@example.com>
        LABEL org.example.name="my app" version=1
        ENV A=1 B="two words"
        EXPOSE 80 53/udp
        VOLUME /data
        WORKDIR /srv
        USER nobody
        SHELL ["/bin/sh", "-ec"]
        STOPSIGNAL SIGQUIT
        HEALTHCHECK --interval=30s --retries=3 CMD wget -q -O- http://localhost/
        ENTRYPOINT ["/bin/echo"]
        CMD hello
        ONBUILD RUN echo triggered
    """)
    build(base, context, "-t", "meta")
    info = inspect_config(base, "meta")
    c = info["Config"]
    assert info["Author"] == "Jane <jane@example.com>"
    assert c["Labels"] == {"org.example.name": "my app", "version": "1"}
    assert "A=1" in c["Env"] and "B=two words" in c["Env"]
    assert c["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}} and c["Volumes"] == {"/data": {}}
    assert (c["WorkingDir"], c["User"], c["StopSignal"]) == ("/srv", "nobody", "SIGQUIT")
    assert c["Shell"] == ["/bin/sh", "-ec"]
    assert c["Healthcheck"] == {"Test": ["CMD-SHELL", "wget -q -O- http://localhost/"],
                                "Interval": 30_000_000_000, "Retries": 3}
    assert c["Entrypoint"] == ["/bin/echo"] and c["Cmd"] == ["/bin/sh", "-ec", "hello"]
    assert c["OnBuild"] == ["RUN echo triggered"]


def test_onbuild_triggers_run_when_the_image_is_used_as_a_base(base, tmp_path):
    parent = write_context(tmp_path / "parent", "FROM busybox\nONBUILD COPY marker.txt /from-child.txt\n")
    build(base, parent, "-t", "parent")
    child = write_context(tmp_path / "child", "FROM parent\nCMD [\"cat\", \"/from-child.txt\"]\n",
                          {"marker.txt": "copied by the trigger\n"})
    out = build(base, child, "-t", "child").stdout
    assert "Executing build trigger" in out
    assert run(base, "child") == "copied by the trigger\n"
    assert not inspect_config(base, "child")["Config"].get("OnBuild")  # triggers are not inherited


def test_an_onbuild_trigger_with_a_heredoc_runs_its_body_in_the_child(base, tmp_path):
    parent = write_context(tmp_path / "parent", "FROM busybox\nONBUILD RUN <<EOF\necho from the heredoc > /h.txt\nEOF\n")
    build(base, parent, "-t", "parent")
    child = write_context(tmp_path / "child", "FROM parent\n")
    build(base, child, "-t", "child")
    assert run(base, "child", "cat", "/h.txt") == "from the heredoc\n"


def test_a_flag_the_builder_does_not_implement_is_named_in_a_warning(base, tmp_path):
    context = write_context(tmp_path / "ctx", "FROM busybox\nRUN --mount=type=cache,target=/c echo ran > /ran\n")
    out = build(base, context, "-t", "warned").stdout
    assert "[Warning] RUN --mount is not supported yet; ignored" in out
    assert run(base, "warned", "cat", "/ran") == "ran\n"  # the step still ran, and its result is in the image


def test_the_last_steps_id_is_the_image_id_as_in_docker(base, tmp_path):
    context = write_context(tmp_path / "ctx", "FROM busybox\nRUN echo one > /one\nCMD [\"cat\", \"/one\"]\n")
    for _ in range(2):  # built, then every step from the cache
        out = build(base, context, "-t", "ids").stdout.splitlines()
        last_step = [line for line in out if line.startswith(" ---> ")][-1]
        built = next(line for line in out if line.startswith("Successfully built "))
        assert last_step.split()[-1 if "CACHED" in last_step else 1] == built.split()[-1]
        assert inspect_config(base, "ids")["Id"][7:19] == built.split()[-1]


@pytest.mark.parametrize("flags", [["--rm"], ["--rm=false"], ["--force-rm"], ["--rm=true", "--force-rm=false"]])
def test_build_accepts_dockers_rm_flags(base, tmp_path, flags):
    context = write_context(tmp_path / "ctx", "FROM busybox\nRUN true\n")
    build(base, context, *flags)
    assert base("ps", "-a", "-q").stdout == ""  # no step container is left either way


# --- the promised flags ---------------------------------------------------------------------

def test_f_names_the_dockerfile_and_q_prints_only_the_image_id(base, tmp_path):
    context = write_context(tmp_path / "ctx", "FROM busybox\nRUN false\n", {"other.df": "FROM busybox\nRUN echo f > /f\n"})
    result = build(base, context, "-q", "-f", str(tmp_path / "ctx" / "other.df"), "-t", "quiet")
    assert result.stdout == inspect_config(base, "quiet")["Id"] + "\n"  # and no step output at all
    assert run(base, "quiet", "cat", "/f") == "f\n"


def test_network_decides_what_run_steps_see_and_progress_plain_prints_the_steps(base, tmp_path):
    context = write_context(tmp_path / "ctx", "FROM busybox\nRUN readlink /proc/self/ns/net > /ns; ls /sys/class/net >> /ns\n")
    out = build(base, context, "--network", "none", "--progress", "plain", "-t", "none").stdout
    assert "Step 2/2 : RUN readlink /proc/self/ns/net > /ns; ls /sys/class/net >> /ns" in out
    netns, *links = run(base, "none", "cat", "/ns").split()
    assert netns != os.readlink("/proc/self/ns/net") and links == ["lo"]
    build(base, context, "--network", "host", "--no-cache", "-t", "host")  # the network is not in the cache key
    assert run(base, "host", "cat", "/ns").split()[0] == os.readlink("/proc/self/ns/net")
