"""Exercise markers: the blocks of final/ that a student writes, and their starting points.

An exercise is a comment form of the chapter markers, around the code a
student writes in a chapter, with what the student needs to write it:

    # >>> exercise 3.2: the memory limit's file
    # hint: cgroup v2 calls it memory.max; v1, memory.limit_in_bytes
    # test: test_cgroups.py::test_a_memory_hog_is_killed_with_exit_137_and_the_oom_kill_is_reported
    ...the code...
    # <<< exercise 3.2

`3.2` is chapter 3's second exercise. The title follows the colon; `hint:`
and `test:` lines (each may repeat) sit right after the opening line; a test
is `file::name` or `file::name[case]` as pytest names it. An exercise whose
TODO lies on the path of more than its own tests says so, once:

    # stops: every run

(or `every push`, `every build` ...): until it is written, every test that
reaches its TODO fails, and tests/test_workshop.py accepts that; the TODO of
an exercise without a `stops:` line may fail only the tests it lists.

An exercise may span several blocks (one per cgroup layout, say): the first
block carries the title, hint, tests and stops, and the others repeat only
`# >>> exercise 3.2`.

The markers are comments, so final/ runs as if they were not there, and the
chapter generator drops them (tools/chapters.py calls `is_marker`). A
chapter's *starting point* is its snapshot with each of its own exercises'
blocks replaced by a TODO that gives the hint and raises NotImplementedError;
exercises of earlier chapters stay solved.
"""

import json
import os
import re
import sys
import textwrap
from dataclasses import dataclass, field

START = re.compile(r"^(\s*)# >>> exercise (\d+)\.(\d+)(?::\s*(.*?))?\s*$")
END = re.compile(r"^\s*# <<< exercise (\d+)\.(\d+)\s*$")
META = re.compile(r"^\s*# (hint|test|stops): (.*?)\s*$")
TEST = re.compile(r"^test_\w+\.py::test_\w+(\[.+\])?$")  # a case id may hold anything, "]" too


def is_marker(line: str) -> bool:
    """Whether a line of final/ is an exercise marker, which no snapshot shows."""
    return bool(START.match(line) or END.match(line) or META.match(line))


# The generator imports is_marker from here, so it comes after it.
if __package__:
    from . import chapters  # noqa: E402
else:  # run as a script, or imported by tools/chapters.py run as one: tools/ is on sys.path
    import chapters  # noqa: E402


class ExerciseError(Exception):
    """A malformed exercise marker; the message says where."""


@dataclass
class Block:
    """One marked block: in which file, which lines (0-based, markers included), at what indent."""
    path: str
    first: int
    last: int
    indent: str


@dataclass
class Exercise:
    """What a student writes, how to go about it, and which tests say it works."""
    chapter: int
    number: int
    title: str = ""
    hints: list[str] = field(default_factory=list)
    tests: list[str] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)
    stops: str = ""  # "every run": whose path its TODO lies on, so that all of them fail until it is written

    @property
    def id(self) -> str:
        return f"{self.chapter}.{self.number}"

    @property
    def hint(self) -> str:
        return " ".join(self.hints)

    def node_ids(self) -> list[str]:
        """The tests as pytest names them from the repository's top folder."""
        return [f"tests/{test}" for test in self.tests]


def parse_file(text: str, path: str, found: dict[str, Exercise]) -> None:
    """Add the exercises marked in one file of final/ to `found` (by id)."""
    lines = text.splitlines()
    open_block: tuple[Exercise, int, str] | None = None
    in_header = False
    for index, line in enumerate(lines):
        where = f"{path}:{index + 1}"
        if match := START.match(line):
            if open_block:
                raise ExerciseError(f"{where}: exercise {open_block[0].id} is still open (blocks do not nest)")
            exercise = found.setdefault(f"{int(match[2])}.{int(match[3])}",
                                        Exercise(int(match[2]), int(match[3])))
            if match[4]:
                if exercise.title:
                    raise ExerciseError(f"{where}: exercise {exercise.id} has a title already: "
                                        "give title, hint and tests on its first block only")
                exercise.title = match[4]
            if not match[1]:
                raise ExerciseError(f"{where}: an exercise must sit inside a function (it becomes a raise)")
            open_block, in_header = (exercise, index, match[1]), True
        elif match := META.match(line):
            if not (open_block and in_header):
                raise ExerciseError(f"{where}: '# {match[1]}:' belongs right after '# >>> exercise N.M'")
            exercise = open_block[0]
            if match[1] == "test" and not TEST.match(match[2]):
                raise ExerciseError(f"{where}: a test is written file::name or file::name[case], "
                                    f"e.g. test_run.py::test_x (got {match[2]!r})")
            if match[1] == "stops":
                if exercise.stops:
                    raise ExerciseError(f"{where}: exercise {exercise.id} says what it stops already")
                if not match[2].startswith("every "):
                    raise ExerciseError(f"{where}: '# stops:' says whose path the TODO lies on, "
                                        f"e.g. '# stops: every run' (got {match[2]!r})")
                exercise.stops = match[2]
            else:
                (exercise.hints if match[1] == "hint" else exercise.tests).append(match[2])
        elif match := END.match(line):
            exercise_id = f"{int(match[1])}.{int(match[2])}"
            if not open_block or open_block[0].id != exercise_id:
                raise ExerciseError(f"{where}: '<<< exercise {exercise_id}' closes nothing open")
            exercise, first, indent = open_block
            exercise.blocks.append(Block(path, first, index, indent))
            open_block = None
        else:
            in_header = False
    if open_block:
        raise ExerciseError(f"{path}:{open_block[1] + 1}: exercise {open_block[0].id} is never closed")


def find_all() -> dict[str, Exercise]:
    """Every exercise marked in `source` (final/), checked, by id in chapter order."""
    found: dict[str, Exercise] = {}
    for relative in chapters.source_files():
        with open(os.path.join(chapters.SOURCE, relative)) as f:
            parse_file(f.read(), f"final/{relative}", found)
    for exercise in found.values():
        missing = [what for what, have in (("a title", exercise.title), ("a hint", exercise.hints),
                                            ("a test", exercise.tests)) if not have]
        if missing:
            where = f"{exercise.blocks[0].path}:{exercise.blocks[0].first + 1}"
            raise ExerciseError(f"{where}: exercise {exercise.id} needs {', '.join(missing)}")
        if exercise.chapter not in chapters.CHAPTERS:
            raise ExerciseError(f"exercise {exercise.id}: there is no chapter {exercise.chapter}")
    return dict(sorted(found.items(), key=lambda item: (item[1].chapter, item[1].number)))


def of_chapter(chapter: int) -> list[Exercise]:
    """The exercises of one chapter, in order."""
    return [e for e in find_all().values() if e.chapter == chapter]


# --- starting points -------------------------------------------------------------

def stub(exercise: Exercise, indent: str, part: int) -> list[str]:
    """What a student finds where the block was: the task, the hint, and a raise."""
    title = exercise.title + (f" (part {part})" if part > 1 else "")
    message = json.dumps(f"exercise {exercise.id}: {exercise.title}", ensure_ascii=False)
    # "#   hint:", not "# hint:": the generator drops marker lines, and this one must stay.
    lines = [f"# TODO exercise {exercise.id}: {title}"]
    lines += [f"#   {'hint:' if n == 0 else '     '} {text}" for n, text in enumerate(wrap(exercise.hint))]
    lines += [f"#   check: sudo python3 -m tools.workshop check {exercise.chapter} THIS_DIR --exercise {exercise.id}",
              f"raise NotImplementedError({message})"]
    return [f"{indent}{line}\n" for line in lines]


def wrap(text: str, width: int = 88) -> list[str]:
    return textwrap.wrap(text, width) or [""]


def cut(text: str, path: str, chapter: int, exercises: dict[str, Exercise], only: set[str] | None = None) -> str:
    """The file with the blocks of `chapter`'s exercises (or of those in `only`) replaced by stubs
    (markers of others stay)."""
    lines = text.splitlines(keepends=True)
    holes = sorted(((block, exercise, part) for exercise in exercises.values()
                    if exercise.chapter == chapter and (only is None or exercise.id in only)
                    for part, block in enumerate(exercise.blocks, start=1) if block.path == path),
                   key=lambda hole: -hole[0].first)
    for block, exercise, part in holes:  # from the bottom up, so the line numbers stay valid
        lines[block.first:block.last + 1] = stub(exercise, block.indent, part)
    return "".join(lines)


def write_start(chapter: int, target: str, only: set[str] | None = None) -> None:
    """Write chapter `chapter`'s starting point into `target` (which must not exist): every exercise of
    the chapter a TODO, or only those in `only` (ids), the others written."""
    exercises = find_all()
    for relative in chapters.source_files():
        with open(os.path.join(chapters.SOURCE, relative)) as f:
            text = cut(f.read(), f"final/{relative}", chapter, exercises, only)
        text = chapters.render(text, chapter, f"final/{relative}")
        if text is None:
            continue
        destination = os.path.join(target, relative)
        os.makedirs(os.path.dirname(destination), exist_ok=True)
        with open(destination, "w") as f:
            f.write(text)


def markdown(found: dict[str, Exercise]) -> str:
    """The exercises as a page of the docs (docs/workshop/exercises.md is this, committed)."""
    lines = ["# The exercises", "",
             "Generated by `python3 tools/exercises.py --markdown` from the markers in `final/`;",
             "`tests/test_workshop.py` fails when this page is stale. Start one chapter with",
             "`python3 -m tools.workshop start N DIR`; grade it with `sudo python3 -m tools.workshop check N DIR`.", ""]
    for chapter, name in chapters.CHAPTERS.items():
        lines += [f"## Chapter {chapter}: {name.split('_', 1)[1]}", ""]
        for exercise in (e for e in found.values() if e.chapter == chapter):
            files = ", ".join(f"`{p}`" for p in sorted({b.path.removeprefix('final/') for b in exercise.blocks}))
            lines += [f"### {exercise.id} {exercise.title}", "", f"In {files}. Hint: {exercise.hint}", ""]
            if exercise.stops:
                lines += [f"Until it is written, its TODO stops {exercise.stops}.", ""]
            lines += ["Graded by:", ""]
            lines += [f"- `{test}`" for test in exercise.tests]
            lines.append("")
    return "\n".join(lines)


def main() -> int:
    """List the exercises: `python3 tools/exercises.py [CHAPTER | --markdown]`."""
    try:
        exercises = find_all()
    except ExerciseError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if sys.argv[1:] == ["--markdown"]:
        print(markdown(exercises), end="")
        return 0
    wanted = int(sys.argv[1]) if len(sys.argv) > 1 else None
    for exercise in exercises.values():
        if wanted in (None, exercise.chapter):
            files = sorted({block.path for block in exercise.blocks})
            print(f"{exercise.id:5} {exercise.title}  ({', '.join(files)}; {len(exercise.tests)} tests)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
