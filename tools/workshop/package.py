"""What `check` grades: a student's package, refused with a hint when it cannot be graded."""

import json
import os
import re
import sys

from .. import chapters
from . import WorkshopError

MARK = ".workshop.json"  # written by `start`: which chapter a directory began as


def check(directory: str, chapter: int) -> str:
    """The student's package directory, refused with a hint if it cannot be graded as `chapter`."""
    path = os.path.abspath(directory)
    if not os.path.isdir(path):
        raise WorkshopError(f"{directory}: no such directory",
                            f"make it with: python3 -m tools.workshop start {chapter} {directory}")
    missing = [name for name in ("__init__.py", "__main__.py", "cli.py") if not os.path.isfile(os.path.join(path, name))]
    if missing:
        raise WorkshopError(f"{directory} is not a chapter package (no {', '.join(missing)})",
                            f"check the folder that `start` made, e.g. python3 -m tools.workshop start {chapter} ~/ch{chapter:02}")
    check_name(path, chapter)
    check_syntax(path, directory)
    started = started_as(path)
    if started is not None and started != chapter:
        raise WorkshopError(f"{directory} was started as chapter {started}, not {chapter}",
                            f"check it as chapter {started}: python3 -m tools.workshop check {started} {directory}")
    check_chapter_files(path, directory, chapter)
    return path


def check_syntax(path: str, shown: str) -> None:
    """Refuse a package Python cannot read: every test would fail, and none would say why."""
    for folder, subfolders, files in os.walk(path):
        subfolders[:] = sorted(d for d in subfolders if d != "__pycache__")
        for name in sorted(f for f in files if f.endswith(".py")):
            source = os.path.join(folder, name)
            try:
                with open(source, "rb") as f:
                    compile(f.read(), source, "exec", dont_inherit=True)
            except SyntaxError as err:  # IndentationError and TabError are SyntaxErrors too
                where = os.path.join(shown, os.path.relpath(source, path))
                raise WorkshopError(f"{where}, line {err.lineno}: {type(err).__name__}: {err.msg}",
                                    "fix it first: Python cannot read the file, so no test can run") from None


def chapter_files(chapter: int) -> set[str]:
    """The modules chapter `chapter`'s package has (as the generator makes it)."""
    found = set()
    for relative in chapters.source_files():
        with open(os.path.join(chapters.SOURCE, relative)) as f:
            if chapters.render(f.read(), chapter, relative) is not None:
                found.add(relative)
    return found


def check_chapter_files(path: str, shown: str, chapter: int) -> None:
    """Refuse a package that lacks modules of chapter `chapter` (an earlier chapter's, say)."""
    missing = sorted(chapter_files(chapter) - package_files(path))
    if not missing:
        return
    like = [n for n in chapters.CHAPTERS if chapter_files(n) <= package_files(path)]
    guess = f" (it looks like chapter {max(like)})" if like else ""
    raise WorkshopError(f"{shown} is not a chapter {chapter} package: it has no {', '.join(missing[:4])}"
                        f"{' ...' if len(missing) > 4 else ''}{guess}",
                        f"check it as its own chapter, or start chapter {chapter}: "
                        f"python3 -m tools.workshop start {chapter} NEW_DIR")


def package_files(path: str) -> set[str]:
    return {os.path.relpath(os.path.join(folder, name), path)
            for folder, _, files in os.walk(path) for name in files if name.endswith(".py")}


def check_name(path: str, chapter: int) -> None:
    """Refuse a folder name that `python3 -m NAME` cannot run as this package."""
    name = os.path.basename(path)
    if not re.fullmatch(r"\w+", name, re.ASCII) or name in sys.stdlib_module_names:
        why = "is a module of Python's own" if name in sys.stdlib_module_names else "is not a Python name"
        raise WorkshopError(f"{path}: the folder's name {name!r} {why}, so `python3 -m {name}` cannot run it",
                            f"name the folder with letters, digits and _ only, e.g. ch{chapter:02}")


def started_as(path: str) -> int | None:
    """The chapter `start` made this directory from, if it did."""
    try:
        with open(os.path.join(path, MARK)) as f:
            return int(json.load(f)["chapter"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def started_with(path: str) -> list[str] | None:
    """The exercises `start` left as TODOs in this directory (start --exercise leaves only some), if known."""
    try:
        with open(os.path.join(path, MARK)) as f:
            found = json.load(f)["exercises"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return [str(e) for e in found] if isinstance(found, list) else None
