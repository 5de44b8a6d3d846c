"""Chapter 07 on: `dockerfile parse FILE --json` reads a Dockerfile as Docker's parser does.

Each case writes a small Dockerfile, parses it through the CLI, and checks
the instructions (keyword, flags, raw arguments, form, heredocs, lines) or
the error (FILE:LINE, a hint, exit 1). No root needed.
"""

import json
import textwrap

import pytest
from conftest import failure_code


def parse(dockyard, tmp_path, text: str) -> list[dict]:
    path = tmp_path / "Dockerfile"
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    result = dockyard("dockerfile", "parse", str(path), "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def parse_error(dockyard, tmp_path, text: str) -> str:
    path = tmp_path / "Dockerfile"
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    result = dockyard("dockerfile", "parse", str(path), "--json")
    assert result.returncode == failure_code(result), result.stdout
    assert "hint:" in result.stderr and "Traceback" not in result.stderr
    return result.stderr


def only(instructions: list[dict], cmd: str) -> dict:
    found = [i for i in instructions if i["cmd"] == cmd]
    assert len(found) == 1, instructions
    return found[0]


# --- instructions and forms ---------------------------------------------------------

def test_each_instruction_becomes_one_object_with_its_keyword_in_lower_case(dockyard, tmp_path):
    got = parse(dockyard, tmp_path, """
        from busybox
        Run echo hi
        CMD ["sh"]
    """)
    assert [i["cmd"] for i in got] == ["from", "run", "cmd"]
    assert set(got[0]) == {"cmd", "flags", "args", "json", "heredocs", "start_line", "end_line"}


def test_exec_form_is_a_json_list_of_its_elements(dockyard, tmp_path):
    got = parse(dockyard, tmp_path, 'FROM a\nENTRYPOINT ["/bin/echo", "a b", "\\"q\\""]\n')
    assert got[1]["args"] == ["/bin/echo", "a b", '"q"'] and got[1]["json"] is True


def test_shell_form_keeps_the_whole_rest_of_the_line_as_one_argument(dockyard, tmp_path):
    got = parse(dockyard, tmp_path, "FROM a\nRUN   echo  'a  b'  $HOME  \n")
    assert got[1]["args"] == ["echo  'a  b'  $HOME"] and got[1]["json"] is False


def test_an_invalid_json_array_is_shell_form_as_in_docker(dockyard, tmp_path):
    got = parse(dockyard, tmp_path, "FROM a\nCMD ['sh', '-c']\n")
    assert got[1]["args"] == ["['sh', '-c']"] and got[1]["json"] is False


@pytest.mark.parametrize("rest", ['["a"] trailing', '["x"]  # comment?'])
def test_text_after_a_json_array_makes_it_shell_form_as_in_buildkit(dockyard, tmp_path, rest):
    # BuildKit reads the rest with json.Unmarshal, which refuses trailing text; a # is a comment
    # only at the start of a line.
    got = parse(dockyard, tmp_path, f"FROM a\nCMD {rest}\n")
    assert got[1]["args"] == [rest] and got[1]["json"] is False


def test_an_empty_exec_form_has_no_arguments(dockyard, tmp_path):
    got = parse(dockyard, tmp_path, "FROM a\nCMD []\n")
    assert got[1]["args"] == [] and got[1]["json"] is True


def test_copy_in_shell_form_splits_at_blanks(dockyard, tmp_path):
    got = parse(dockyard, tmp_path, "FROM a\nCOPY a.txt  b/*.c   /dest/\n")
    assert got[1]["args"] == ["a.txt", "b/*.c", "/dest/"]


def test_copy_in_json_form_keeps_blanks_in_names(dockyard, tmp_path):
    got = parse(dockyard, tmp_path, 'FROM a\nCOPY ["my file", "/dest dir/"]\n')
    assert got[1]["args"] == ["my file", "/dest dir/"] and got[1]["json"] is True


def test_from_with_a_stage_name_and_platform(dockyard, tmp_path):
    got = parse(dockyard, tmp_path, "FROM --platform=linux/amd64 golang:1.22 AS build\n")
    assert got[0]["flags"] == ["--platform=linux/amd64"]
    assert got[0]["args"] == ["golang:1.22", "AS", "build"]


def test_env_pairs_are_key_value_separator_triples_with_quotes_kept(dockyard, tmp_path):
    got = parse(dockyard, tmp_path, "FROM a\nENV A=1 B=\"two words\" C='x y' D=e\\ f\n")
    assert got[1]["args"] == ["A", "1", "=", "B", '"two words"', "=", "C", "'x y'", "=", "D", "e\\ f", "="]


def test_the_old_env_form_takes_the_rest_of_the_line_as_the_value(dockyard, tmp_path):
    got = parse(dockyard, tmp_path, "FROM a\nENV GREETING hello   big world\n")
    assert got[1]["args"] == ["GREETING", "hello   big world", ""]


def test_label_keys_may_be_quoted(dockyard, tmp_path):
    got = parse(dockyard, tmp_path, 'FROM a\nLABEL "com.example.vendor"="ACME" version=1.0\n')
    assert got[1]["args"] == ['"com.example.vendor"', '"ACME"', "=", "version", "1.0", "="]


def test_arg_keeps_each_name_or_default_as_written(dockyard, tmp_path):
    got = parse(dockyard, tmp_path, 'ARG A B="x y"\nFROM a\n')
    assert got[0]["cmd"] == "arg" and got[0]["args"] == ["A", 'B="x y"']


def test_user_workdir_stopsignal_and_maintainer_keep_one_string(dockyard, tmp_path):
    got = parse(dockyard, tmp_path, """
        FROM a
        USER app:staff
        WORKDIR /my dir
        STOPSIGNAL SIGTERM
        MAINTAINER Jane <jane@example.com>
    """)
    assert [i["args"] for i in got[1:]] == [["app:staff"], ["/my dir"], ["SIGTERM"], ["Jane <jane@example.com>"]]


def test_expose_and_volume_split_at_blanks(dockyard, tmp_path):
    got = parse(dockyard, tmp_path, "FROM a\nEXPOSE 80/tcp 53/udp\nVOLUME /data /logs\nVOLUME [\"/v\"]\n")
    assert [i["args"] for i in got[1:]] == [["80/tcp", "53/udp"], ["/data", "/logs"], ["/v"]]


def test_healthcheck_keeps_its_type_then_its_command(dockyard, tmp_path):
    got = parse(dockyard, tmp_path, """
        FROM a
        HEALTHCHECK --interval=5m --timeout=3s CMD curl -f http://localhost/
        HEALTHCHECK CMD ["true"]
        HEALTHCHECK NONE
    """)
    assert got[1]["flags"] == ["--interval=5m", "--timeout=3s"]
    assert got[1]["args"] == ["CMD", "curl -f http://localhost/"] and not got[1]["json"]
    assert got[2]["args"] == ["CMD", "true"] and got[2]["json"]
    assert got[3]["args"] == ["NONE"]


def test_shell_takes_a_json_array(dockyard, tmp_path):
    got = parse(dockyard, tmp_path, 'FROM a\nSHELL ["/bin/sh", "-ec"]\n')
    assert got[1]["args"] == ["/bin/sh", "-ec"] and got[1]["json"]


def test_onbuild_holds_its_trigger_as_a_nested_instruction(dockyard, tmp_path):
    got = parse(dockyard, tmp_path, "FROM a\nONBUILD COPY --chown=1:1 . /app\n")
    trigger = got[1]["args"][0]
    assert got[1]["cmd"] == "onbuild"
    assert trigger["cmd"] == "copy" and trigger["flags"] == ["--chown=1:1"] and trigger["args"] == [".", "/app"]


def test_arg_may_come_before_from(dockyard, tmp_path):
    got = parse(dockyard, tmp_path, "ARG VERSION=1.36\nFROM busybox:${VERSION}\n")
    assert got[1]["args"] == ["busybox:${VERSION}"]


# --- flags ---------------------------------------------------------------------------

def test_flags_lose_their_quotes(dockyard, tmp_path):
    got = parse(dockyard, tmp_path, "FROM a\nCOPY --from=build --chown=\"app:app\" --chmod='0755' x /y\n")
    assert got[1]["flags"] == ["--from=build", "--chown=app:app", "--chmod=0755"]


def test_a_double_dash_ends_the_flags(dockyard, tmp_path):
    got = parse(dockyard, tmp_path, "FROM a\nRUN -- --not-a-flag\n")
    assert got[1]["flags"] == [] and got[1]["args"] == ["--not-a-flag"]


def test_repeatable_flags_may_repeat(dockyard, tmp_path):
    got = parse(dockyard, tmp_path, "FROM a\nRUN --mount=type=tmpfs,target=/a --mount=type=tmpfs,target=/b true\n")
    assert len(got[1]["flags"]) == 2


@pytest.mark.parametrize("line, cmd, flags, args", [
    ("FOO bar", "foo", [], []),
    ("COPY --CHOWN=1:1 a b", "copy", ["--CHOWN=1:1"], ["a", "b"]),
    ("COPY --user=x --form=y a b", "copy", ["--user=x", "--form=y"], ["a", "b"]),
    ("ENV --x=1 A=b", "env", ["--x=1"], ["A", "b", "="]),
    ("COPY --link=maybe --chown a b", "copy", ["--link=maybe", "--chown"], ["a", "b"]),
    ("RUN", "run", [], []),
    ("SHELL sh -c", "shell", [], ["sh -c"]),
    ("ONBUILD", "onbuild", [], []),
    ("HEALTHCHECK CMD-SHELL curl -f x", "healthcheck", [], ["CMD-SHELL", "curl -f x"]),
    ("HEALTHCHECK --interval=5s", "healthcheck", ["--interval=5s"], []),
    ("WORKDIR", "workdir", [], []),
    ("FROM a b c d", "from", [], ["a", "b", "c", "d"]),
])
def test_the_parser_accepts_what_buildkits_parser_accepts_and_leaves_checks_to_the_builder(
        dockyard, tmp_path, line, cmd, flags, args):
    got = parse(dockyard, tmp_path, f"FROM a\n{line}\n")
    assert (got[1]["cmd"], got[1]["flags"], got[1]["args"]) == (cmd, flags, args)


# --- lines: comments, continuations, directives ---------------------------------------------

def test_comments_and_blank_lines_are_skipped_and_lines_are_counted(dockyard, tmp_path):
    got = parse(dockyard, tmp_path, "# hello\n\nFROM a\n   # indented comment\nRUN true\n")
    assert [(i["start_line"], i["end_line"]) for i in got] == [(3, 3), (5, 5)]


def test_a_continuation_joins_lines_and_keeps_their_indentation(dockyard, tmp_path):
    got = parse(dockyard, tmp_path, "FROM a\nRUN echo a \\\n    b\n")
    assert got[1]["args"] == ["echo a     b"]
    assert (got[1]["start_line"], got[1]["end_line"]) == (2, 3)


def test_comment_and_blank_lines_inside_a_continuation_are_dropped(dockyard, tmp_path):
    got = parse(dockyard, tmp_path, "FROM a\nRUN echo a \\\n# note\n\n  b \\\n  # more\n  c\nCMD x\n")
    assert got[1]["args"] == ["echo a   b   c"]
    assert (got[1]["start_line"], got[1]["end_line"]) == (2, 7)
    assert got[2]["start_line"] == 8


def test_an_escaped_escape_at_the_end_does_not_continue_the_line(dockyard, tmp_path):
    got = parse(dockyard, tmp_path, "FROM a\nRUN echo a\\\\\nCMD b\n")
    assert got[1]["args"] == ["echo a\\\\"] and got[2]["cmd"] == "cmd"


def test_trailing_blanks_after_the_escape_still_continue_the_line(dockyard, tmp_path):
    got = parse(dockyard, tmp_path, "FROM a\nRUN echo a \\  \n b\n")
    assert got[1]["args"] == ["echo a  b"]


def test_the_escape_directive_makes_backtick_the_continuation(dockyard, tmp_path):
    got = parse(dockyard, tmp_path, "# escape=`\nFROM a\nRUN dir c:\\ `\n  /w\n")
    assert got[1]["args"] == ["dir c:\\   /w"]


def test_the_escape_directive_changes_how_env_words_split(dockyard, tmp_path):
    got = parse(dockyard, tmp_path, "# escape=`\nFROM a\nENV A=x` y B=c:\\\n")
    assert got[1]["args"] == ["A", "x` y", "=", "B", "c:\\", "="]


def test_directives_are_case_insensitive_and_may_have_blanks(dockyard, tmp_path):
    got = parse(dockyard, tmp_path, "#  ESCAPE = `\nFROM a\nRUN a `\n b\n")
    assert got[1]["args"] == ["a  b"]


def test_a_directive_after_a_comment_is_only_a_comment(dockyard, tmp_path):
    got = parse(dockyard, tmp_path, "# hello\n# escape=`\nFROM a\nRUN a \\\n b\n")
    assert got[1]["args"] == ["a  b"]


def test_a_directive_after_an_instruction_is_only_a_comment(dockyard, tmp_path):
    got = parse(dockyard, tmp_path, "FROM a\n# escape=`\nRUN a \\\n b\n")
    assert got[1]["args"] == ["a  b"]


def test_syntax_and_check_directives_are_accepted(dockyard, tmp_path):
    got = parse(dockyard, tmp_path, "# syntax=docker/dockerfile:1\n# check=skip=all\nFROM a\n")
    assert got[0]["start_line"] == 3


def test_a_repeated_directive_is_an_error_with_its_line(dockyard, tmp_path):
    err = parse_error(dockyard, tmp_path, "# escape=\\\n# escape=`\nFROM a\n")
    assert "Dockerfile:2" in err and "only one escape parser directive" in err


def test_an_invalid_escape_character_is_an_error(dockyard, tmp_path):
    assert "invalid escape token" in parse_error(dockyard, tmp_path, "# escape=x\nFROM a\n")


def test_windows_line_endings_are_accepted(dockyard, tmp_path):
    got = parse(dockyard, tmp_path, "FROM a\r\nRUN echo a \\\r\n b\r\n")
    assert got[1]["args"] == ["echo a  b"]


# --- heredocs --------------------------------------------------------------------------

def test_a_heredoc_gives_its_body_and_ends_at_its_delimiter(dockyard, tmp_path):
    got = parse(dockyard, tmp_path, "FROM a\nRUN <<EOF\necho one\necho two\nEOF\nCMD x\n")
    run = got[1]
    assert run["args"] == ["<<EOF"]
    assert run["heredocs"] == [{"name": "EOF", "content": "echo one\necho two\n", "expand": True, "chomp": False}]
    assert (run["start_line"], run["end_line"]) == (2, 5) and got[2]["start_line"] == 6


def test_a_quoted_heredoc_delimiter_turns_expansion_off(dockyard, tmp_path):
    got = parse(dockyard, tmp_path, "FROM a\nRUN <<'EOF'\n$x\nEOF\nRUN <<\"END\"\n$y\nEND\n")
    assert [i["heredocs"][0]["expand"] for i in got[1:]] == [False, False]


def test_a_dash_heredoc_matches_a_tab_indented_delimiter_and_keeps_the_raw_body(dockyard, tmp_path):
    got = parse(dockyard, tmp_path, "FROM a\nRUN <<-EOF\n\techo hi\n\tEOF\n")
    assert got[1]["heredocs"] == [{"name": "EOF", "content": "\techo hi\n", "expand": True, "chomp": True}]


def test_several_heredocs_in_one_instruction_are_read_in_order(dockyard, tmp_path):
    got = parse(dockyard, tmp_path, "FROM a\nCOPY <<A <<B /dest/\none\nA\ntwo\nB\n")
    assert [(h["name"], h["content"]) for h in got[1]["heredocs"]] == [("A", "one\n"), ("B", "two\n")]
    assert got[1]["args"] == ["<<A", "<<B", "/dest/"]


def test_a_heredoc_may_feed_a_command_in_the_shell_form(dockyard, tmp_path):
    got = parse(dockyard, tmp_path, "FROM a\nRUN python3 <<EOF > out.txt\nprint(1)\nEOF\n")
    assert got[1]["args"] == ["python3 <<EOF > out.txt"] and got[1]["heredocs"][0]["content"] == "print(1)\n"


def test_a_quoted_heredoc_marker_is_not_a_heredoc(dockyard, tmp_path):
    got = parse(dockyard, tmp_path, "FROM a\nRUN echo '<<EOF'\nCMD x\n")
    assert got[1]["heredocs"] == [] and got[2]["cmd"] == "cmd"


def test_heredocs_are_only_for_run_copy_and_add(dockyard, tmp_path):
    got = parse(dockyard, tmp_path, "FROM a\nCMD cat <<EOF\nRUN true\n")
    assert got[1]["heredocs"] == [] and got[2]["cmd"] == "run"


def test_an_onbuild_node_carries_its_triggers_heredoc(dockyard, tmp_path):
    # BuildKit reads the heredocs of the whole line and hangs them on the ONBUILD node.
    got = parse(dockyard, tmp_path, "FROM a\nONBUILD RUN <<EOF\ntrue\nEOF\n")
    assert got[1]["heredocs"] == [{"name": "EOF", "content": "true\n", "expand": True, "chomp": False}]
    assert got[1]["args"][0]["heredocs"] == [] and got[1]["end_line"] == 4


def test_a_heredoc_keeps_windows_line_endings_as_written(dockyard, tmp_path):
    path = tmp_path / "Dockerfile"
    path.write_bytes(b"FROM a\r\nRUN <<EOF\r\necho hi\r\nEOF\r\nCMD x\r\n")
    result = dockyard("dockerfile", "parse", str(path), "--json")
    got = json.loads(result.stdout)
    assert got[1]["heredocs"][0]["content"] == "echo hi\r\n" and got[2]["cmd"] == "cmd"


def test_a_body_line_that_looks_like_an_instruction_or_another_delimiter_is_body(dockyard, tmp_path):
    got = parse(dockyard, tmp_path, "FROM a\nCOPY <<X <<Y /dest\nY\nX\nX\nY\nRUN <<EOF\nINVALID\nEOF\n")
    assert [(h["name"], h["content"]) for h in got[1]["heredocs"]] == [("X", "Y\n"), ("Y", "X\n")]
    assert got[2]["heredocs"][0]["content"] == "INVALID\n" and len(got) == 3


def test_a_heredoc_marker_on_user_is_not_a_heredoc_so_the_next_line_is_an_instruction(dockyard, tmp_path):
    got = parse(dockyard, tmp_path, "FROM a\nUSER <<INVALID\nINVALID\n")
    assert [(i["cmd"], i["args"], i["heredocs"]) for i in got[1:]] == [("user", ["<<INVALID"], []), ("invalid", [], [])]


def test_an_unterminated_heredoc_is_an_error_at_its_instruction(dockyard, tmp_path):
    err = parse_error(dockyard, tmp_path, "FROM a\nRUN <<EOF\necho hi\n")
    assert "Dockerfile:2" in err and "unterminated heredoc" in err


# --- errors ----------------------------------------------------------------------------

@pytest.mark.parametrize("text, line, message", [
    ("FROM a\n\nCMD [\"a\", 1]\n", 3, "arrays must be comprised of strings only"),
    ("FROM a\nENV A=1 B\n", 2, "can't find = in"),
    ("FROM a\nENV A\n", 2, "ENV must have two arguments"),
])
def test_a_syntax_error_is_reported_with_its_file_and_line(dockyard, tmp_path, text, line, message):
    # The few mistakes BuildKit's parser itself refuses; the rest are the builder's (test_build.py).
    err = parse_error(dockyard, tmp_path, text)
    assert f"Dockerfile:{line}:" in err and message in err


def test_an_empty_dockerfile_is_an_error(dockyard, tmp_path):
    assert "empty" in parse_error(dockyard, tmp_path, "# only a comment\n\n")


def test_a_missing_dockerfile_is_an_error_with_a_hint(dockyard, tmp_path):
    result = dockyard("dockerfile", "parse", str(tmp_path / "nope"), "--json")
    assert result.returncode == failure_code(result) and "hint:" in result.stderr


# --- stdin, and the plain listing ----------------------------------------------------------

def test_parse_dash_reads_the_dockerfile_from_stdin(dockyard, tmp_path):
    text = "FROM busybox\nRUN echo hi \\\n  there\n"
    from_stdin = dockyard("dockerfile", "parse", "--json", "-", input=text)
    assert from_stdin.returncode == 0, from_stdin.stderr
    assert json.loads(from_stdin.stdout) == parse(dockyard, tmp_path, text)


def test_parse_without_json_lists_each_instruction_with_its_line_number(dockyard, tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM busybox\n# a comment\nRUN echo hi \\\n  there\nCMD [\"sh\"]\n")
    result = dockyard("dockerfile", "parse", str(tmp_path / "Dockerfile"))
    assert result.returncode == 0, result.stderr
    assert [line.split()[:2] for line in result.stdout.splitlines()] == [["1", "FROM"], ["3", "RUN"], ["5", "CMD"]]
