"""`check`: grade a student's chapter with the project's own suite, and say it in the lesson's words.

The grader runs pytest on exactly the tests that a chapter's exercises name
(or one exercise's, or with --full every test of the chapter), against the
student's package through the suite's --impl, with a time limit per test.
It installs nothing. Each test runs with the suite's leak check, which
removes what a student's code leaves (mounts, cgroups, processes); after the
run, clean.py sweeps the run's scratch directory as well. Every Python the
tests start notes the exercise TODOs it reaches (todo_hook.py), so each
result says which TODOs stopped it.
"""

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

from .. import chapters, exercises
from . import WorkshopError, clean, package

REPO = chapters.ROOT


@dataclass
class Promise:
    """One test, as the lesson says it, and how it went."""
    test: str
    outcome: str = "not run"
    expected: str = ""
    seconds: float = 0.0
    reached: set[str] = field(default_factory=set)  # the exercise TODOs the test's code raised

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

def python_with_pytest(env: dict[str, str]) -> str:
    """An interpreter that has pytest; the grader installs nothing itself."""
    for python in (sys.executable, "/usr/bin/python3"):
        if subprocess.run([python, "-c", "import pytest"], capture_output=True, env=env).returncode == 0:
            return python
    raise WorkshopError("pytest is not installed, and the grader installs nothing",
                        "install it once before class: sudo apt-get install python3-pytest "
                        "(or sh tools/packages.sh test)")


def run_suite(package: str, chapter: int, node_ids: list[str], cases: dict, timeout: int,
              own: bool = False) -> list[dict]:
    """Run the tests against `package`; return the plugin's results (see plugin.py)."""
    scratch = tempfile.mkdtemp(prefix=clean.SCRATCH_PREFIX)
    lock = clean.hold(scratch)  # `clean` leaves a directory alone while a check holds it
    results = os.path.join(scratch, "results.json")
    env = {**os.environ, "WORKSHOP_RESULTS": results, "WORKSHOP_TIMEOUT": str(timeout),
           "WORKSHOP_IMPL": os.path.basename(package), "PYTHONDONTWRITEBYTECODE": "1"}
    python = python_with_pytest(env)
    env.update(trace_todos(python, scratch))
    command = [python, "-m", "pytest", "-p", "tools.workshop.plugin", "-p", "no:cacheprovider",
               "-q", "--no-header", "-rN", f"--impl={package}", f"--chapter={chapter}",
               f"--basetemp={os.path.join(scratch, 'tmp')}", *node_ids]
    if cases:
        env["WORKSHOP_CASES"] = json.dumps(cases)
    if own:
        env["WORKSHOP_FIRST"] = str(chapter)
    # Each test has its own limit (plugin.py); this one is for what lies outside them.
    budget = timeout * (count_tests(cases) + 2) if cases and not own else timeout * 400
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


def trace_todos(python: str, scratch: str) -> dict[str, str]:
    """Install todo_hook.py as the usercustomize of a user site in `scratch`; the environment that loads it."""
    base = os.path.join(scratch, "site")
    site = subprocess.run([python, "-m", "site", "--user-site"], env={**os.environ, "PYTHONUSERBASE": base},
                          capture_output=True, text=True).stdout.strip()
    os.makedirs(site, mode=0o755)
    shutil.copy(os.path.join(os.path.dirname(__file__), "todo_hook.py"), os.path.join(site, "usercustomize.py"))
    trace = os.path.join(scratch, "todos.trace")
    os.close(os.open(trace, os.O_CREAT | os.O_WRONLY, 0o600))
    # Rootless tests run the engine as nobody: it must read the hook and append to the trace.
    for path in (scratch, *(os.path.join(base, *parts) for parts in walk_up(site, base))):
        os.chmod(path, 0o755 if path != scratch else 0o711)
    os.chmod(trace, 0o666)
    return {"PYTHONUSERBASE": base, "WORKSHOP_TRACE": trace}


def walk_up(path: str, base: str) -> list[tuple[str, ...]]:
    """The folders from `base` down to `path`, as parts relative to `base` ((), ('lib',), ...)."""
    parts = tuple(os.path.relpath(path, base).split(os.sep))
    return [parts[:n] for n in range(len(parts) + 1)]


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


def node_ids_for(tests: list[str], own: int | None = None) -> tuple[list[str], dict[str, list[str] | None]]:
    """pytest's names for `tests` (file::name[case]), and which cases of each (None: all); plugin.py
    picks the cases. With `own` (a chapter), the files of every test that chapter introduces come too."""
    cases: dict[str, list[str] | None] = {}
    for test in tests:
        function, bracket, case = test.partition("[")
        if not bracket:
            cases[function] = None
        elif function not in cases or cases[function] is not None:
            cases.setdefault(function, []).append(case.removesuffix("]"))
    if own:
        files = {function.partition("::")[0] for function in cases} | set(introduced_in(own))
        return [f"tests/{file}" for file in sorted(files)], cases
    return [f"tests/{function}" for function in cases], cases


def introduced_in(chapter: int) -> list[str]:
    """The test files that hold a test chapter `chapter` introduces, as tests/table.py says."""
    spec = importlib.util.spec_from_file_location("table", os.path.join(REPO, "tests", "table.py"))
    table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(table)
    return sorted({key.partition("::")[0] for key, value in table.TABLE.items()
                   if value is not None and (value[0] if isinstance(value, tuple) else value) == chapter})


def grade(chapter: int, directory: str, wanted: str | None = None, full: bool = False,
          timeout: int = 120, own: bool = False, extra: list[str] | None = None) -> list[Group]:
    """Run the chosen tests against the student's package; group the results by exercise.
    `full`: every test of the chapter; `own`: the exercises' and every test the chapter introduces;
    `extra`: more tests (file::name[case]) to run beside the exercises'."""
    if chapter not in chapters.CHAPTERS:
        raise WorkshopError(f"there is no chapter {chapter}", "the chapters are 1 to 7")
    for test in extra or []:
        if not exercises.TEST.match(test):
            raise WorkshopError(f"{test!r} is not a test's name", "write it file::name or file::name[case], "
                                "e.g. test_run.py::test_the_exit_code_is_the_commands_own")
    package_dir = package.check(directory, chapter)
    chosen = choose(chapter, wanted)
    if wanted is None and (started := package.started_with(package_dir)):
        chosen = [e for e in chosen if e.id in started] or chosen  # the ones `start --exercise` left to do
    if full and wanted is None:
        node_ids, cases, own = ["tests"], {}, False  # the suite's table picks the chapter's tests
    else:
        own = own and wanted is None
        tests = [t for exercise in chosen for t in exercise.tests] + list(extra or [])
        node_ids, cases = node_ids_for(tests, chapter if own else None)
    found = run_suite(package_dir, chapter, node_ids, cases, timeout, own)
    return group(chosen, found, os.path.basename(package_dir))


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
        promise.reached.update(entry.get("reached", []))
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
    """pytest adds the implementation to a test's case: 'x[ch03-memory]', 'x[overlay-ch03-/etc]' or
    'x[ch03]' -> 'x[memory]', 'x[overlay-/etc]' or 'x'."""
    name, bracket, case = test.partition("[")
    case = case.removesuffix("]")
    if not bracket or case == impl:
        return name
    for rest in (case.removeprefix(impl + "-"), case.removesuffix("-" + impl), case.replace(f"-{impl}-", "-", 1)):
        if rest != case:
            return f"{name}[{rest}]"
    return test


def matching(promises: dict[str, Promise], test: str) -> list[Promise]:
    """The results a `file::name` names (all its cases), or one 'not run' if none came back."""
    found = [p for name, p in promises.items() if name == test or name.startswith(test + "[")]
    return found or [Promise(test)]
