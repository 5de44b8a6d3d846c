"""The grader's pytest plugin: a time limit per test, and the results as JSON.

`check` loads it with `-p tools.workshop.plugin` and sets WORKSHOP_RESULTS
(the file to write the results to), WORKSHOP_TIMEOUT (the seconds one test
may take, fixtures included), WORKSHOP_IMPL (the package's name), to run
only some cases of a parametrized test, WORKSHOP_CASES, and with `--own`,
WORKSHOP_FIRST (a chapter: its own tests run too). A student's code may hang (a wait that never
returns, a lock never released): SIGALRM interrupts the test, which then
fails as any other, and its fixtures still clean up what it left. Each
result names the exercise TODOs its test reached, from WORKSHOP_TRACE (see
todo_hook.py).
"""

import json
import os
import re
import signal

import pytest

from tools.workshop.grade import without_impl

# The stub's message, "exercise 3.2: ...", as the engine printed it; pytest may cut a long
# value's repr short ("...2: "), so the word "exercise" is not always there.
EXERCISE = re.compile(r"(?:NotImplementedError: exercise |\.\.\.)(\d+\.\d+): ")
ASSERTION = re.compile(r"^(?:E\s+)?(assert .*)$", re.MULTILINE)

results: list[dict] = []


class TestTimedOut(Exception):
    """The test ran past the grader's limit."""


def timeout() -> int:
    return int(os.environ.get("WORKSHOP_TIMEOUT", "120"))


def interrupt(_signum: int, _frame: object) -> None:
    raise TestTimedOut(f"no answer after {timeout()} s: the code under test hangs (an endless wait or loop?)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep the cases the exercises name (WORKSHOP_CASES: {"file::name": [case, ...] or null}) and,
    with WORKSHOP_FIRST, every test that chapter introduces; with neither (--full), every test of the
    implementation, but none of the tooling's own."""
    wanted = json.loads(os.environ.get("WORKSHOP_CASES", "null"))
    first = int(os.environ.get("WORKSHOP_FIRST", "0"))
    impl = os.environ["WORKSHOP_IMPL"]
    keep, drop = [], []
    for item in items:
        graded = wanted is None and has_impl(item)
        if wanted is not None:
            function, _, case = without_impl(item.nodeid.removeprefix("tests/"), impl).partition("[")
            cases = wanted.get(function, [])
            graded = cases is None or case.removesuffix("]") in cases
        if first and not graded:
            graded = has_impl(item) and introduced_in(item, first)
        (keep if graded else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def has_impl(item: pytest.Item) -> bool:
    """Whether a test runs against an implementation (the tooling's own tests do not)."""
    return "impl" in getattr(getattr(item, "callspec", None), "params", {})


def introduced_in(item: pytest.Item, chapter: int) -> bool:
    """Whether tests/table.py says chapter `chapter` makes this test's promise first."""
    from table import chapters_for  # tests/table.py: tests/ is on sys.path once the suite's conftest is loaded
    chapters = chapters_for(item.nodeid)
    return isinstance(chapters, range) and chapters.start == chapter


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    # Setup too: a fixture may run the student's code (importing an image, say).
    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.alarm(timeout())
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def expected_line(report: pytest.TestReport, reached: list[str]) -> str:
    """The one line that says what a failed test wanted, in the words the test used."""
    text = report.longreprtext
    crash = getattr(report.longrepr, "reprcrash", None)
    message = crash.message if crash else text.strip().splitlines()[-1]
    if message.startswith("NotImplementedError: exercise "):  # the test called the stub itself
        return "still a TODO: " + message.removeprefix("NotImplementedError: ")[:200]
    stopped = [match[1]] if (match := EXERCISE.search(text)) else reached
    todo = f"; the engine stopped at exercise {' and '.join(stopped)}'s TODO" if stopped else ""
    if "TestTimedOut" in text:
        return f"no answer after {timeout()} s: does the code wait or loop forever?"
    if report.when == "teardown":  # the leak check: what the code left (the fixture removed it)
        return "left behind, and cleaned up by the grader: " + message.removeprefix("AssertionError: ").splitlines()[0][:200]
    if match := ASSERTION.search(message):
        line = match[1]
        return line[:200] + todo
    return (message.strip().splitlines()[0][:200] if message.strip() else "failed") + todo


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" or report.outcome != "passed":
        outcome = "timeout" if report.failed and "TestTimedOut" in report.longreprtext else report.outcome
        entry = {"nodeid": report.nodeid, "when": report.when, "outcome": outcome,
                 "seconds": round(report.duration, 2), "reached": reached(report.nodeid)}
        if report.failed:
            entry["expected"] = expected_line(report, entry["reached"])
        elif report.skipped:
            entry["expected"] = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else "skipped"
        results.append(entry)
        save()


def reached(nodeid: str) -> list[str]:
    """The exercise TODOs that the test's processes raised so far, in order (todo_hook.py writes them)."""
    try:
        with open(os.environ["WORKSHOP_TRACE"], errors="replace") as f:
            lines = [line.rstrip("\n").rpartition("\t") for line in f]
    except (KeyError, OSError):
        return []
    found = {todo for test, _, todo in lines if test == nodeid and re.fullmatch(r"\d+\.\d+", todo)}
    return sorted(found, key=lambda todo: [int(n) for n in todo.split(".")])


def save() -> None:
    """Write the results so far: a run killed halfway still tells what it found."""
    path = os.environ.get("WORKSHOP_RESULTS")
    if path:
        with open(path + ".tmp", "w") as f:
            json.dump(results, f, indent=1)
        os.replace(path + ".tmp", path)


def pytest_sessionfinish(session: pytest.Session) -> None:
    save()
