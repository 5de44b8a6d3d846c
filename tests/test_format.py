"""final/ only: --format is Go's text/template as Docker users write it (range, if, index, Docker's functions),
values print as Go prints them, and run's --label reaches inspect and ps."""

import json

from conftest import needs_root, failure_code

pytestmark = needs_root


def inspect(dockyard, template: str, name: str) -> str:
    result = dockyard("inspect", "-f", template, name)
    assert result.returncode == 0, result.stderr
    return result.stdout


def labelled(dockyard, rootfs, tmp_path) -> None:
    label_file = tmp_path / "labels"
    label_file.write_text("# a comment, then a blank line\n\nfrom.file=yes\ntier=overridden\n")
    result = dockyard("run", "--network", "none", "--name", "box", "--label", "tier=web", "-l", "com.example.version=1.2",
                      "-l", "empty", "--label-file", str(label_file), "-e", "GREETING=hi",
                      "-v", f"{tmp_path}:/data:ro", "--rootfs", rootfs, "sh", "-c", "exit 3")
    assert result.returncode == 3, result.stderr


def test_lists_and_maps_print_as_go_prints_them(dockyard, rootfs, tmp_path):
    labelled(dockyard, rootfs, tmp_path)
    assert inspect(dockyard, "{{.Args}} {{.State.Running}} {{.State.ExitCode}}", "box") == "[-c exit 3] false 3\n"
    assert inspect(dockyard, "{{.Config.Labels}}", "box") == \
        "map[com.example.version:1.2 empty: from.file:yes tier:web]\n"
    assert json.loads(inspect(dockyard, "{{json .Config.Labels}}", "box")) == \
        {"com.example.version": "1.2", "empty": "", "from.file": "yes", "tier": "web"}


def test_range_index_and_variables_reach_into_lists_and_maps(dockyard, rootfs, tmp_path):
    labelled(dockyard, rootfs, tmp_path)
    assert inspect(dockyard, '{{index .Config.Labels "com.example.version"}}', "box") == "1.2\n"
    assert inspect(dockyard, "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}", "box") == \
        "com.example.version=1.2;empty=;from.file=yes;tier=web;\n"
    assert inspect(dockyard, "{{range .Mounts}}{{.Type}} {{.Source}} {{.Destination}} {{.RW}}{{end}}", "box") == \
        f"bind {tmp_path} /data false\n"
    env = inspect(dockyard, "{{range .Config.Env}}{{println .}}{{end}}", "box").splitlines()
    assert "GREETING=hi" in env
    assert inspect(dockyard, "{{range $i, $a := .Args}}{{$i}}:{{$a}} {{end}}", "box") == "0:-c 1:exit 3 \n"
    assert inspect(dockyard, "{{range .Config.Labels.nothing}}x{{else}}none{{end}}", "box") == "none\n"


def test_if_with_and_comparisons_choose_what_prints(dockyard, rootfs, tmp_path):
    labelled(dockyard, rootfs, tmp_path)
    template = '{{if .State.Running}}up{{else if eq .State.Status "exited"}}exited {{.State.ExitCode}}{{else}}?{{end}}'
    assert inspect(dockyard, template, "box") == "exited 3\n"
    assert inspect(dockyard, "{{with .State}}{{.Status}}{{end}}", "box") == "exited\n"
    assert inspect(dockyard, "{{if and (not .State.Running) (gt .State.ExitCode 1)}}failed{{end}}", "box") == "failed\n"
    assert inspect(dockyard, "{{range .Args}}{{if eq . \"exit 3\"}}{{break}}{{end}}{{.}} {{end}}", "box") == "-c \n"


def test_dockers_functions_and_pipes(dockyard, rootfs, tmp_path):
    labelled(dockyard, rootfs, tmp_path)
    assert inspect(dockyard, '{{join .Args " , "}}', "box") == "-c , exit 3\n"
    assert inspect(dockyard, '{{upper .Name}} {{lower "ABC"}} {{title "web server"}}', "box") == "/BOX abc Web Server\n"
    assert inspect(dockyard, '{{split .Name "o"}} {{len .Args}}', "box") == "[/b x] 2\n"
    assert inspect(dockyard, '{{.State.Status | upper}} {{printf "%s=%d" .State.Status .State.ExitCode}}', "box") == \
        "EXITED exited=3\n"
    assert json.loads(inspect(dockyard, "{{.State | json}}", "box"))["ExitCode"] == 3
    assert inspect(dockyard, "{{/* a comment */}}[ {{- .Name -}} ]", "box") == "[/box]\n"


def test_ps_format_takes_the_same_templates(dockyard, rootfs, tmp_path):
    labelled(dockyard, rootfs, tmp_path)
    result = dockyard("ps", "-a", "--format", '{{if eq .State "exited"}}{{.Names}} is down{{end}}')
    assert (result.returncode, result.stdout) == (0, "box is down\n"), result.stderr
    result = dockyard("ps", "-a", "--filter", "label=from.file=yes", "--format", "{{.Names}} {{.Labels}}")
    assert result.stdout == "box com.example.version=1.2,empty=,from.file=yes,tier=web\n"


def test_templates_go_would_refuse_are_refused_with_a_hint_and_print_nothing(dockyard, rootfs, tmp_path):
    labelled(dockyard, rootfs, tmp_path)
    for template, error in [("{{range .Args}}x", "{{range}} without its {{end}}"),
                            ("{{shout .Name}}", "function 'shout' not defined"),
                            ("{{end}}", "unexpected {{end}}"),
                            ("{{.Name", "unclosed action"),
                            ("{{.Colour}}", "there is no field 'Colour'"),
                            ("{{.Name.First}}", "cannot evaluate field First in a string"),
                            ("{{index .Args 5}}", "index 5 is out of range"),
                            ("{{eq .State.ExitCode \"3\"}}", "cannot compare a int with a string"),
                            ("{{$nowhere}}", "undefined variable $nowhere")]:
        result = dockyard("inspect", "-f", template, "box")
        assert result.returncode == failure_code(result), template
        assert result.stdout == "", template
        assert result.stderr.startswith(f"error: --format: ") and error in result.stderr, (template, result.stderr)
        assert "\nhint: " in result.stderr and "Traceback" not in result.stderr, template


def test_a_bad_label_is_refused_and_makes_no_container(dockyard, rootfs, tmp_path):
    for args in (["--label", "=web"], ["--label-file", str(tmp_path / "missing")]):
        result = dockyard("run", "--network", "none", "--name", "never", *args, "--rootfs", rootfs, "true")
        assert result.returncode == failure_code(result) and result.stderr.startswith("error: ") and "\nhint: " in result.stderr
    assert dockyard("ps", "-a", "-q").stdout == ""


def test_images_volumes_and_networks_take_a_format_too(dockyard, rootfs):
    assert dockyard("import", rootfs, "shelf:1").returncode == 0
    image_id = dockyard("images", "-q").stdout.strip()
    assert dockyard("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}").stdout == f"shelf:1 {image_id}\n"
    table = dockyard("image", "ls", "--format", "table {{.ID}}\\t{{.Repository}}\\t{{.CreatedSince}}").stdout
    assert table.splitlines()[0].split() == ["IMAGE", "ID", "REPOSITORY", "CREATED"]
    assert json.loads(dockyard("images", "--format", "json").stdout)["Repository"] == "shelf"
    assert dockyard("volume", "create", "jar").returncode == 0
    listed = dockyard("volume", "ls", "--format", "{{.Driver}} {{.Name}} {{.Mountpoint}}").stdout.split()
    assert listed[:2] == ["local", "jar"] and listed[2].endswith("/volumes/jar/_data")
    assert dockyard("volume", "ls", "--format", "table {{.Name}}").stdout.splitlines() == ["VOLUME NAME", "jar"]
    names = dockyard("network", "ls", "--format", "{{.Name}} {{.Driver}} {{.Scope}}").stdout.splitlines()
    assert names == ["bridge bridge local", "host host local", "none null local"]


def test_management_commands_say_what_the_plain_ones_say(dockyard, rootfs):
    result = dockyard("container", "run", "--network", "none", "--name", "grouped", "--rootfs", rootfs, "echo", "hi")
    assert (result.returncode, result.stdout) == (0, "hi\n"), result.stderr
    assert inspect(dockyard, "{{.State.Status}}", "grouped") == "exited\n"
    assert dockyard("container", "inspect", "-f", "{{.Name}}", "grouped").stdout == "/grouped\n"
    assert dockyard("container", "logs", "grouped").stdout == "hi\n"
    assert dockyard("import", rootfs, "shelf").returncode == 0
    assert dockyard("image", "tag", "shelf", "shelf:two").returncode == 0
    assert dockyard("images", "--format", "{{.Tag}}").stdout.split() == ["latest", "two"]
    assert dockyard("container", "rm", "grouped").returncode == 0
    assert dockyard("container", "ls", "-a", "-q").stdout == ""
    result = dockyard("container", "frobnicate", "x")
    assert result.returncode == 125 and "hint:" in result.stderr  # a command line it cannot read: 125


def test_inspect_shows_what_it_finds_and_names_what_it_does_not(dockyard, rootfs, tmp_path):
    labelled(dockyard, rootfs, tmp_path)
    result = dockyard("inspect", "-f", "{{.Name}}", "box", "nowhere")
    assert result.returncode == failure_code(result) and result.stdout == "/box\n"
    assert result.stderr.startswith("error: no such object: nowhere\nhint: ")
    result = dockyard("inspect", "nowhere")
    assert result.returncode == failure_code(result) and json.loads(result.stdout) == []
