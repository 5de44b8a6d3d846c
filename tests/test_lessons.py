"""The lessons' transcripts: what each page shows a command printing is what it prints.

Every ```console block of the README, getting started and the seven chapters
runs in a sandbox of its own (tools/transcripts.py says how, and what `...`
stands for). A lesson that drifts from the code fails here.
"""

import os
import sys

import pytest

from conftest import needs_root, require_programs

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from tools import transcripts  # noqa: E402

PAGES = [page for page in transcripts.PAGES if transcripts.parse(page)]


def test_every_chapter_has_a_transcript():
    chapters = [page for page in transcripts.PAGES if page.startswith("docs/chapters/")]
    assert len(chapters) == 7
    assert set(chapters) <= set(PAGES), "a chapter without a console transcript"
    assert "README.md" in PAGES


@needs_root
@pytest.mark.parametrize("page", PAGES)
def test_the_page_prints_what_it_shows(page):
    require_programs("unshare", "setpriv", "ip", "skopeo")  # the sandbox, and the lessons' own tools
    reports = transcripts.mismatches(page)
    assert not reports, "\n".join(reports)


# --- the matcher itself ---------------------------------------------------------------------

@pytest.mark.parametrize("expected, actual, matches", [
    (["a", "b"], ["a", "b"], True),
    (["a", "b"], ["a", "c"], False),
    (["a"], ["a", "b"], False),                 # nothing may be left over
    (["a", "..."], ["a", "b", "c"], True),      # a line of `...`: any lines
    (["...", "z"], ["z"], True),                # ... or none
    (["id ... done"], ["id 4711 done"], True),  # `...` inside a line: any text
    (["id ... done"], ["id 4711 failed"], False),
    (["sha256:..."], ["sha256:ab"], True),
    ([], [""], False),                          # a command shown silent must print nothing
])
def test_the_matcher_elides_only_where_the_page_says(expected, actual, matches):
    assert transcripts.lines_match(expected, actual) is matches


def test_a_heredoc_and_a_continuation_belong_to_their_command(tmp_path, monkeypatch):
    page = tmp_path / "page.md"
    page.write_text("```console\n$ cat <<'EOF'\nhi\nEOF\nhi\n$ echo a \\\n  b\na b\n```\n")
    monkeypatch.setattr(transcripts, "ROOT", str(tmp_path))
    commands = transcripts.parse("page.md")
    assert [(c.text, c.expected) for c in commands] == [("cat <<'EOF'\nhi\nEOF", ["hi"]),
                                                        ("echo a \\\n  b", ["a b"])]
