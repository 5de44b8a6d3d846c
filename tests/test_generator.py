"""The chapter generator: its marker grammar, and the snapshots it writes.

`final/` is the one source; tools/chapters.py cuts it into chapters/01..07.
These tests run once (tooling), not per implementation.
"""

import ast
import io
import os
import re
import subprocess
import sys
import textwrap
import tokenize

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from tools import chapters  # noqa: E402


def render(source: str, chapter: int) -> str | None:
    return chapters.render(textwrap.dedent(source), chapter, "final/example.py")


# --- the marker grammar ---------------------------------------------------------------

def test_a_file_marker_hides_the_file_before_its_chapter():
    source = "# chapter: 03\nimport os\n"
    assert render(source, 2) is None
    assert render(source, 3) == "import os\n"


def test_a_block_appears_from_its_chapter_on():
    source = """\
        a()
        # >>> chapter 03
        b()
        # <<< chapter 03
        """
    assert render(source, 2) == "a()\n"
    assert render(source, 3) == "a()\nb()\n"
    assert render(source, chapters.FINAL) == "a()\nb()\n"


def test_a_retired_block_is_uncommented_in_its_chapters_only():
    source = """\
        def f():
            # >>> chapter 01-02
            # return old()
            # <<< chapter 01-02
            return new()
        """
    assert render(source, 1) == "def f():\n    return old()\n    return new()\n"
    assert render(source, 3) == "def f():\n    return new()\n"


def test_a_one_line_tag_shows_the_line_from_its_chapter_on_without_the_tag():
    source = "a()\nb()    # ch 03\nc()\n"
    assert render(source, 2) == "a()\nc()\n"
    assert render(source, 3) == "a()\nb()\nc()\n"


def test_a_retired_one_line_tag_is_live_in_its_chapters_and_commented_out_after():
    source = """\
        def f():
            # return old()    # ch 01-02
            return new()      # ch 03
        """
    assert render(source, 1) == "def f():\n    return old()\n"
    assert render(source, 2) == "def f():\n    return old()\n"
    assert render(source, 3) == "def f():\n    return new()\n"


def test_a_final_one_line_tag_is_in_no_chapter():
    source = "a()\nextra()    # ch final\n"
    assert render(source, 7) == "a()\n"
    assert render(source, chapters.FINAL) == "a()\nextra()\n"


def test_a_retired_line_that_final_does_not_comment_out_is_an_error():
    with pytest.raises(chapters.MarkerError, match="example.py:1"):
        render("return old()    # ch 01-02\n", 1)


@pytest.mark.parametrize("tag", ["# ch 3", "# ch 03-", "# ch final2", "# ch03", "#ch 03"])
def test_a_malformed_one_line_tag_is_an_error_not_a_comment(tag):
    with pytest.raises(chapters.MarkerError, match="example.py:2"):
        render(f"a()\nb()    {tag}\n", 3)


def test_a_block_closed_by_another_spec_is_an_error():
    with pytest.raises(chapters.MarkerError, match="closes nothing open"):
        render("# >>> chapter 02\na()\n# <<< chapter 03\n", 2)


def test_a_block_never_closed_is_an_error():
    with pytest.raises(chapters.MarkerError, match="never closed"):
        render("# >>> chapter 02\na()\n", 2)


def test_hidden_lines_leave_no_run_of_more_than_two_blank_lines():
    source = "a()\n\n\nb()    # ch 03\n\n\nc()\n"
    assert "\n\n\n\n" not in render(source, 2)


# --- the snapshots -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def snapshots(tmp_path_factory) -> str:
    """Every chapter freshly generated from final/, in a scratch folder."""
    target = str(tmp_path_factory.mktemp("chapters"))
    chapters.write_all(target)
    return target


def snapshot_files(root: str):
    for directory, _, files in os.walk(root):
        for name in sorted(files):
            if name.endswith(".py"):
                yield os.path.join(directory, name)


@pytest.mark.parametrize("chapter", sorted(chapters.CHAPTERS))
def test_every_snapshot_byte_compiles(snapshots, chapter):
    folder = os.path.join(snapshots, chapters.CHAPTERS[chapter])
    for path in snapshot_files(folder):
        with open(path) as f:
            source = f.read()
        compile(source, path, "exec")  # a SyntaxError names the file and line


@pytest.mark.parametrize("chapter", sorted(chapters.CHAPTERS))
def test_no_snapshot_keeps_a_marker_or_a_run_of_blank_lines(snapshots, chapter):
    folder = os.path.join(snapshots, chapters.CHAPTERS[chapter])
    for path in snapshot_files(folder):
        with open(path) as f:
            text = f.read()
        for number, line in enumerate(text.splitlines(), start=1):
            where = f"{os.path.relpath(path, snapshots)}:{number}"
            assert not chapters.LINE_TAG.search(line), f"{where}: a one-line chapter tag survived"
            assert not chapters.BLOCK_START.match(line), f"{where}: a block marker survived"
            assert not chapters.FILE_MARKER.match(line), f"{where}: a file marker survived"
        assert "\n\n\n\n" not in text, f"{os.path.relpath(path, snapshots)}: three blank lines in a row"


def test_the_committed_chapters_match_final():
    result = subprocess.run([sys.executable, "tools/chapters.py", "--check"], cwd=REPO,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]


# --- the lesson diff ---------------------------------------------------------------------

def lesson(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "tools/chapters.py", "--diff", *args], cwd=REPO,
                          capture_output=True, text=True)


@pytest.mark.parametrize("first", sorted(chapters.CHAPTERS))
def test_every_consecutive_lesson_diff_renders(first):
    second = str(first + 1) if first + 1 in chapters.CHAPTERS else "final"
    result = lesson(str(first), second)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    headers = [line for line in result.stdout.splitlines() if line.startswith(("--- ", "+++ "))]
    assert headers, "the lesson changes nothing"
    for line in headers:
        name = line[4:]
        assert name == "/dev/null" or name.split("/", 1)[0] in (chapters.CHAPTERS[first], second,
                                                                 chapters.CHAPTERS.get(first + 1)), line
    assert not any(chapters.SNIPPET_MARKER.match(line[1:]) for line in result.stdout.splitlines()
                   if line[:1] in "+- "), "a snippet marker shows in the lesson"


def test_a_file_that_a_chapter_adds_comes_from_dev_null_and_subpackages_are_walked():
    result = lesson("5", "6")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    added = [lines[i + 1] for i, line in enumerate(lines) if line == "--- /dev/null"]
    assert "+++ 06_registry/registry/__init__.py" in added
    assert "+++ 06_registry/registry/client.py" in added


def test_the_stat_has_one_line_per_file_of_the_diff_and_a_total():
    full, stat = lesson("6", "7"), lesson("6", "7", "--stat")
    assert stat.returncode == 0, stat.stderr
    files = sorted({line[4:].split("/", 1)[1] for line in full.stdout.splitlines()
                    if line.startswith(("--- ", "+++ ")) and line[4:] != "/dev/null"})
    rows = stat.stdout.splitlines()
    assert sorted(row.split("|")[0].strip() for row in rows[:-1]) == files
    added = sum(1 for line in full.stdout.splitlines() if line.startswith("+") and not line.startswith("+++"))
    assert rows[-1].strip().startswith(f"{len(files)} files changed, {added} insertions(+)")


def test_a_closed_pipe_ends_the_diff_quietly():
    reader = subprocess.Popen([sys.executable, "tools/chapters.py", "--diff", "4", "5"], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    reader.stdout.readline()
    reader.stdout.close()  # what `| head -1` does
    stderr = reader.stderr.read().decode()
    assert reader.wait() == 0, stderr
    assert "Traceback" not in stderr and stderr == ""


def test_an_unknown_chapter_is_a_usage_error():
    result = lesson("5", "9")
    assert result.returncode == 2
    assert "no chapter '9'" in result.stderr


# --- the markers in final/, and what the snapshots teach ---------------------------------

MAX_MARKER_SHARE = 0.10


def marker_lines(text: str) -> int:
    """Lines that are not code of final/: file and block markers, and retired lines."""
    count = 0
    for number, line in enumerate(text.splitlines()):
        if (number == 0 and chapters.FILE_MARKER.match(line)) or chapters.BLOCK_START.match(line) \
                or chapters.BLOCK_END.match(line):
            count += 1
        elif (tag := chapters.LINE_TAG.search(line)) and chapters.FINAL not in chapters.chapter_range(tag[1], ""):
            count += 1
    return count


def markers_in_parentheses(text: str) -> list[int]:
    """Lines of markers inside a signature, a call's arguments or any other ( ... )."""
    stack, found = [], []
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type == tokenize.OP and token.string in "([{":
            stack.append(token.string)
        elif token.type == tokenize.OP and token.string in ")]}":
            stack.pop()
        elif token.type == tokenize.COMMENT and "(" in stack:
            line = token.line.rstrip("\n")
            if chapters.BLOCK_START.match(line) or chapters.BLOCK_END.match(line) or chapters.LINE_TAG.search(line):
                found.append(token.start[0])
    return found


def final_sources() -> dict[str, str]:
    sources = {}
    for relative in chapters.source_files():
        with open(os.path.join(chapters.SOURCE, relative)) as f:
            sources[relative] = f.read()
    return sources


def test_no_file_of_final_is_more_than_a_tenth_markers():
    dense = {relative: f"{marker_lines(text)}/{len(text.splitlines())}"
             for relative, text in final_sources().items()
             if text and marker_lines(text) > MAX_MARKER_SHARE * len(text.splitlines())}
    assert not dense, f"more than 10% marker lines: {dense}"


def test_no_marker_sits_inside_a_signature_or_an_argument_list():
    inside = {relative: lines for relative, text in final_sources().items()
              if (lines := markers_in_parentheses(text))}
    assert not inside, f"markers inside ( ... ): {inside}"


# A later chapter's mechanism, by the words that name it. A docstring may name
# one only in a sentence that points to the chapter ("chapter 4 ...", "Not yet: ...").
MECHANISMS = {
    2: r"namespaces?|pivot_root|clone3?\(|unshare|setns|CLONE_NEW\w*|--userns|uid_map",
    3: r"cgroups?|memory\.max|--memory|--cpus|pids\.max",
    4: r"overlay(?:fs)?|layers?|union|copy-up|whiteouts?",
    5: r"manifests?|OCI|digests?|sha256",
    6: r"/v2/|distribution (?:API|spec)|bearer tokens?|registries",
    7: r"Dockerfile|docker build",
}


def docstrings(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if text := ast.get_docstring(node, clean=False):
                yield getattr(node, "lineno", 1), text


@pytest.mark.parametrize("chapter", sorted(chapters.CHAPTERS)[:-1])
def test_no_snapshot_docstring_teaches_a_later_chapters_mechanism(snapshots, chapter):
    folder = os.path.join(snapshots, chapters.CHAPTERS[chapter])
    found = []
    for path in snapshot_files(folder):
        with open(path) as f:
            tree = ast.parse(f.read())
        for line, text in docstrings(tree):
            for sentence in re.split(r"(?<=\.)\s+|\n\s*\n", text):
                if re.search(r"[Cc]hapter\s+\d|Not yet", sentence):
                    continue
                for later in range(chapter + 1, max(chapters.CHAPTERS) + 1):
                    if word := re.search(rf"(?<![\w-])(?:{MECHANISMS[later]})(?![\w-])", sentence, re.IGNORECASE):
                        found.append(f"{os.path.relpath(path, snapshots)}:{line}: {word[0]!r} (chapter {later}) "
                                     f"in: {' '.join(sentence.split())[:120]}")
    assert not found, "\n".join(found)
