"""`check`: grade a student's chapter with the project's own suite, and say it in the lesson's words.

The grader runs pytest on exactly the tests that a chapter's exercises name
(or one exercise's, or with --full every test of the chapter), against the
student's package through the suite's --impl, with a time limit per test.
It installs nothing. Each test runs with the suite's leak check, which
removes what a student's code leaves (mounts, cgroups, processes); after the
run, clean.py sweeps the run's scratch directory as well.
"""

import getpass
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

from .. import chapters, exercises
from . import clean, WorkshopError

REPO = chapters.ROOT
MARK = ".workshop.json"  # written by `start`: which chapter a directory began as


@dataclass
class Promise:
    """One test, as the lesson says it, and how it went."""
    test: str
    outcome: str = "not run"
    expected: str = ""
    seconds: float = 0.0

    @property
    def words(self) -> str:
        """test_a_missing_command_exits_127[x] -> 'a missing command exits 127 [x]'."""
        name = self.test.split("::", 1)[1].removeprefix("test_")
        name, _, case = name.partition("[")
        return name.replace("_", " ") + (f" [{case}" if case else "")


@dataclass
class Group:
    """An exercise and its promises (or the chapter's other tests, for --full)."""
    id: str
    title: str
    promises: list[Promise] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.promises) and all(p.outcome == "passed" for p in self.promises)


# --- what to grade -------------------------------------------------------------------

def check_package(directory: str, chapter: int) -> str:
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


def choose(chapter: int, wanted: str | None) -> list[exercises.Exercise]:
    """The chapter's exercises, or the one asked for ('3.2' or '2'), refused with a hint if unknown."""
    found = exercises.of_chapter(chapter)
    if wanted is None:
        return found
    exercise_id = wanted if "." in wanted else f"{chapter}.{wanted}"
    chosen = [e for e in found if e.id == exercise_id]
    if not chosen:
        known = ", ".join(e.id for e in found)
        raise WorkshopError(f"chapter {chapter} has no exercise {wanted}", f"its exercises are {known}")
    return chosen


# --- running the suite -------------------------------------------------------------------

def python_with_pytest() -> str:
    """An interpreter that has pytest; the grader installs nothing itself."""
    for python in (sys.executable, "/usr/bin/python3"):
        if subprocess.run([python, "-c", "import pytest"], capture_output=True).returncode == 0:
            return python
    raise WorkshopError("pytest is not installed, and the grader installs nothing",
                        "install it once before class: sudo apt-get install python3-pytest "
                        "(or sh tools/packages.sh test)")


def run_suite(package: str, chapter: int, node_ids: list[str], cases: dict, timeout: int) -> list[dict]:
    """Run the tests against `package`; return the plugin's results (see plugin.py)."""
    scratch = tempfile.mkdtemp(prefix=clean.SCRATCH_PREFIX)
    lock = clean.hold(scratch)  # `clean` leaves a directory alone while a check holds it
    results = os.path.join(scratch, "results.json")
    command = [python_with_pytest(), "-m", "pytest", "-p", "tools.workshop.plugin", "-p", "no:cacheprovider",
               "-q", "--no-header", "-rN", f"--impl={package}", f"--chapter={chapter}",
               f"--basetemp={os.path.join(scratch, 'tmp')}", *node_ids]
    env = {**os.environ, "WORKSHOP_RESULTS": results, "WORKSHOP_TIMEOUT": str(timeout),
           "WORKSHOP_IMPL": os.path.basename(package), "PYTHONDONTWRITEBYTECODE": "1"}
    if cases:
        env["WORKSHOP_CASES"] = json.dumps(cases)
    # Each test has its own limit (plugin.py); this one is for what lies outside them.
    budget = timeout * (count_tests(cases) + 2) if cases else timeout * 400
    suite = subprocess.Popen(command, cwd=REPO, env=env, start_new_session=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output, _ = suite.communicate(timeout=budget)
    except subprocess.TimeoutExpired:
        os.killpg(suite.pid, signal.SIGKILL)  # what it found so far is in the results file
        output, _ = suite.communicate()
    except KeyboardInterrupt:  # its own session keeps Ctrl-C from it: pass it on, let it tidy up
        stop(suite)
        os.close(lock)
        clean.sweep_scratch(scratch)
        raise
    try:
        with open(results) as f:
            found = json.load(f)
    except (OSError, ValueError):
        found = None
    finally:
        os.close(lock)
        clean.sweep_scratch(scratch)
    if found is None or (suite.returncode not in (0, 1) and not found):
        tail = "\n".join(output.strip().splitlines()[-15:])
        raise WorkshopError(f"the test suite did not run (pytest exit {suite.returncode}):\n{tail}",
                            "run python3 -m tools.workshop doctor; if it is all green, run the pytest "
                            "command above by hand to see the whole error")
    return found


def stop(suite: subprocess.Popen) -> None:
    """Interrupt the suite as Ctrl-C would (its fixtures clean up), then kill what is left."""
    os.killpg(suite.pid, signal.SIGINT)
    try:
        suite.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(suite.pid, signal.SIGKILL)
        suite.communicate()


def count_tests(cases: dict[str, list[str] | None]) -> int:
    """About how many tests the run has: a whole parametrized test counts for ten."""
    return sum(10 if chosen is None else len(chosen) for chosen in cases.values())


def node_ids_for(chosen: list[exercises.Exercise], full: bool) -> tuple[list[str], dict[str, list[str] | None]]:
    """pytest's names for the tests to run, and which cases of each (None: all); plugin.py picks the cases."""
    if full:
        return ["tests"], {}  # the suite's table picks the chapter's tests
    cases: dict[str, list[str] | None] = {}
    for test in (t for exercise in chosen for t in exercise.tests):
        function, bracket, case = test.partition("[")
        if not bracket:
            cases[function] = None
        elif function not in cases or cases[function] is not None:
            cases.setdefault(function, []).append(case.removesuffix("]"))
    return [f"tests/{function}" for function in cases], cases


def grade(chapter: int, directory: str, wanted: str | None = None, full: bool = False,
          timeout: int = 120) -> list[Group]:
    """Run the chosen tests against the student's package; group the results by exercise."""
    if chapter not in chapters.CHAPTERS:
        raise WorkshopError(f"there is no chapter {chapter}", "the chapters are 1 to 7")
    package = check_package(directory, chapter)
    chosen = choose(chapter, wanted)
    node_ids, cases = node_ids_for(chosen, full and wanted is None)
    found = run_suite(package, chapter, node_ids, cases, timeout)
    return group(chosen, found, os.path.basename(package))


RANK = {"not run": 0, "passed": 1, "skipped": 2, "failed": 3, "timeout": 4}


def group(chosen: list[exercises.Exercise], found: list[dict], impl: str) -> list[Group]:
    """The results per exercise, then the chapter's other tests (with --full)."""
    promises: dict[str, Promise] = {}
    for entry in found:  # a test reports its call, and its setup or teardown if they went wrong
        test = without_impl(entry["nodeid"].removeprefix("tests/"), impl)
        promise = promises.setdefault(test, Promise(test))
        if RANK.get(entry["outcome"], 3) > RANK[promise.outcome]:
            promise.outcome, promise.expected = entry["outcome"], entry.get("expected", "")
        promise.seconds += entry.get("seconds", 0.0)
    groups, listed = [], set()
    for exercise in chosen:
        named = [p for test in exercise.tests for p in matching(promises, test)]
        groups.append(Group(exercise.id, exercise.title, named))
        listed.update(p.test for p in named)
    rest = [p for test, p in promises.items() if test not in listed]
    if rest:
        groups.append(Group("", "the chapter's other promises", rest))
    return groups


def without_impl(test: str, impl: str) -> str:
    """pytest adds the implementation to a test's case: 'x[ch03-memory]' or 'x[ch03]' -> 'x[memory]' or 'x'."""
    name, bracket, case = test.partition("[")
    case = case.removesuffix("]")
    if not bracket or case == impl:
        return name
    for rest in (case.removeprefix(impl + "-"), case.removesuffix("-" + impl)):
        if rest != case:
            return f"{name}[{rest}]"
    return test


def matching(promises: dict[str, Promise], test: str) -> list[Promise]:
    """The results a `file::name` names (all its cases), or one 'not run' if none came back."""
    found = [p for name, p in promises.items() if name == test or name.startswith(test + "[")]
    return found or [Promise(test)]


# --- the scoreboard -------------------------------------------------------------------

MARKS = {"passed": "PASS", "failed": "FAIL", "timeout": "HANG", "skipped": "SKIP", "not run": "----"}


STUB = re.compile(r'raise NotImplementedError\("exercise (\d+\.\d+): ')


def todos_left(directory: str) -> list[str]:
    """The stubs still in a student's package, in the code's order: 'exercise 2.2 (mounts.py, line 78)'."""
    found = []
    for folder, subfolders, files in os.walk(directory):
        subfolders[:] = sorted(d for d in subfolders if d != "__pycache__")
        for name in sorted(f for f in files if f.endswith(".py")):
            with open(os.path.join(folder, name), errors="replace") as f:
                for number, line in enumerate(f, start=1):
                    if match := STUB.search(line):
                        where = os.path.relpath(os.path.join(folder, name), directory)
                        found.append((match[1], f"exercise {match[1]} ({where}, line {number})"))
    return [text for _, text in sorted(found, key=lambda item: [int(n) for n in item[0].split(".")])]


def scoreboard(chapter: int, directory: str, groups: list[Group]) -> str:
    """The report a student reads: each promise kept or not, and what a broken one expected."""
    name = chapters.CHAPTERS[chapter].split("_", 1)[1]
    lines = [f"chapter {chapter} ({name}), graded in {directory}", ""]
    if todos := todos_left(directory):
        lines += ["still a TODO: " + "; ".join(todos),
                  "(a TODO stops every test whose container passes through it: write them in order)", ""]
    for g in groups:
        lines.append(f"exercise {g.id}: {g.title}" if g.id else g.title)
        for p in g.promises:
            lines.append(f"  {MARKS.get(p.outcome, p.outcome.upper())}  {p.words}")
            if p.outcome != "passed" and p.expected:
                lines.append(f"        {p.expected}")
        lines.append("")
    promises = [p for g in groups for p in g.promises]
    kept = sum(p.outcome == "passed" for p in promises)
    done = [g.id for g in groups if g.id and g.passed]
    lines.append(f"{kept} of {len(promises)} promises kept; exercises done: {', '.join(done) or 'none yet'}")
    if any(p.outcome == "skipped" for p in promises) and os.geteuid() != 0:
        lines.append("hint: skipped tests need root: sudo python3 -m tools.workshop check ...")
    return "\n".join(lines)


def as_json(chapter: int, directory: str, groups: list[Group], student: str | None = None) -> dict:
    """The same results for an instructor's class sheet."""
    return {
        "student": student or os.environ.get("SUDO_USER") or getpass.getuser(),
        "host": os.uname().nodename,
        "chapter": chapter,
        "directory": os.path.abspath(directory),
        "exercises": [{"id": g.id, "title": g.title, "passed": g.passed,
                       "tests": [{"test": p.test, "promise": p.words, "outcome": p.outcome,
                                  "expected": p.expected, "seconds": round(p.seconds, 2)} for p in g.promises]}
                      for g in groups],
        "todo": todos_left(directory),
        "kept": sum(p.outcome == "passed" for g in groups for p in g.promises),
        "total": sum(len(g.promises) for g in groups),
    }


def all_kept(groups: list[Group]) -> bool:
    return all(p.outcome == "passed" for g in groups for p in g.promises)

