"""`start`: a chapter's starting point, a complete package with a hole per exercise."""

import json
import os
import shutil
import tempfile

from .. import chapters, exercises
from . import WorkshopError
from .grade import choose
from .package import MARK, check_name


def start(chapter: int, directory: str, wanted: list[str] | None = None) -> list[exercises.Exercise]:
    """Write chapter `chapter`'s starting point into `directory` (new or empty); return its exercises.
    With `wanted` ('3.2' or '2' each), only those are TODOs; the chapter's others come written."""
    if chapter not in chapters.CHAPTERS:
        raise WorkshopError(f"there is no chapter {chapter}", "the chapters are 1 to 7")
    target = os.path.abspath(directory)
    if os.path.exists(target) and (not os.path.isdir(target) or os.listdir(target)):
        raise WorkshopError(f"{directory} exists and is not an empty directory",
                            "start into a new directory; `start` never overwrites a student's work")
    check_name(target, chapter)
    ids = {e.id for want in wanted for e in choose(chapter, want.strip())} if wanted else None
    chosen = [e for e in exercises.of_chapter(chapter) if ids is None or e.id in ids]
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    # Written beside the target, then renamed: a failure leaves no half-made package.
    scratch = tempfile.mkdtemp(prefix=".start-", dir=parent)
    try:
        exercises.write_start(chapter, os.path.join(scratch, "package"), {e.id for e in chosen})
        write_guide(chapter, chosen, os.path.join(scratch, "package"), target)
        if os.path.isdir(target):
            os.rmdir(target)  # empty, as checked above
        os.rename(os.path.join(scratch, "package"), target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return chosen


def write_guide(chapter: int, chosen: list[exercises.Exercise], package: str, target: str) -> None:
    """EXERCISES.md for the student, and the mark that says which chapter this is."""
    with open(os.path.join(package, MARK), "w") as f:
        json.dump({"chapter": chapter, "exercises": [e.id for e in chosen]}, f)
        f.write("\n")
    lines = [f"# Chapter {chapter}: exercises", "",
             f"This folder is chapter {chapter}'s program with {len(chosen)} pieces cut out. Each is a",
             "`TODO exercise N.M` in the code, which raises NotImplementedError until you write it.", "",
             "Check your work from the repository's top folder (the tests need root):", "",
             f"    sudo python3 -m tools.workshop check {chapter} {target}",
             f"    sudo python3 -m tools.workshop check {chapter} {target} --exercise {chapter}.1", ""]
    for exercise in chosen:
        files = ", ".join(sorted({b.path.removeprefix("final/") for b in exercise.blocks}))
        lines += [f"## {exercise.id}: {exercise.title}", "", f"Where: `{files}`", "", f"Hint: {exercise.hint}", ""]
        if exercise.stops:
            lines += [f"Until it is written, its TODO stops {exercise.stops}.", ""]
        lines += ["Done when these tests pass:", ""]
        lines += [f"- `{test}`" for test in exercise.tests]
        lines.append("")
    with open(os.path.join(package, "EXERCISES.md"), "w") as f:
        f.write("\n".join(lines))

