"""The workshop: each chapter's starting point fails exactly its exercises' tests, its snapshot passes them.

Tooling (run once, not per implementation): `python3 -m tools.workshop` cuts a
starting point from final/'s exercise markers and grades it with this suite.
For every chapter, the starting point must fail every test its exercises
name (so a student sees each one turn green) and the chapter's snapshot, the
solution, must pass them all. The bad-input tests drive the commands as an
instructor or a student would get them wrong.
"""

import filecmp
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import pytest

from conftest import needs_root

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from tools import chapters, exercises  # noqa: E402
from tools.workshop import clean  # noqa: E402

CHAPTERS = sorted(chapters.CHAPTERS)


def workshop(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tools.workshop", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)


def grade(chapter: int, directory: str, *more: str) -> dict:
    result = workshop("check", str(chapter), directory, "--json", *more)
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)


# --- the markers -----------------------------------------------------------------------

def test_each_chapter_has_at_least_three_exercises_each_with_a_title_a_hint_and_tests():
    found = exercises.find_all()
    for chapter in CHAPTERS:
        assert len([e for e in found.values() if e.chapter == chapter]) >= 3, f"chapter {chapter}"
    for exercise in found.values():
        assert exercise.title and exercise.hint and exercise.tests, exercise.id


def test_every_test_an_exercise_names_exists_in_the_suite():
    for exercise in exercises.find_all().values():
        for test in exercise.tests:
            file, _, name = test.partition("::")
            with open(os.path.join(REPO, "tests", file)) as f:
                assert re.search(rf"^def {re.escape(name.split('[')[0])}\(", f.read(), re.MULTILINE), \
                    f"exercise {exercise.id} names {test}, which tests/{file} lacks"


def test_the_exercises_page_of_the_docs_is_what_the_markers_say():
    with open(os.path.join(REPO, "docs", "workshop", "exercises.md")) as f:
        assert f.read() == exercises.markdown(exercises.find_all()), \
            "docs/workshop/exercises.md is stale: python3 tools/exercises.py --markdown > docs/workshop/exercises.md"


def test_no_snapshot_shows_an_exercise_marker():
    for directory, _, files in os.walk(os.path.join(REPO, "chapters")):
        for name in files:
            if name.endswith(".py"):
                with open(os.path.join(directory, name)) as f:
                    assert not any(exercises.is_marker(line) for line in f), os.path.join(directory, name)


@pytest.mark.parametrize("bad, words", [
    ("def f():\n    # >>> exercise 1.9: t\n    # hint: h\n    x = 1\n", "never closed"),
    ("def f():\n    x = 1\n    # <<< exercise 1.9\n", "closes nothing open"),
    ("def f():\n    # >>> exercise 1.9: t\n    # test: nonsense\n    x = 1\n    # <<< exercise 1.9\n", "file::name"),
    ("def f():\n    x = 1\n    # hint: stray\n", "belongs right after"),
    ("# >>> exercise 1.9: t\nx = 1\n# <<< exercise 1.9\n", "inside a function"),
    ("def f():\n    # >>> exercise 1.9: t\n    # stops: all runs\n    x = 1\n    # <<< exercise 1.9\n", "stops: every run"),
])
def test_a_malformed_marker_is_an_error_that_says_where(bad, words):
    with pytest.raises(exercises.ExerciseError, match=words):
        exercises.parse_file(bad, "final/x.py", {})


# --- the proof: each TODO fails its own tests and nothing else ----------------------------------
# A TODO changes nothing but its own block, into a raise: a test can fail on a starting point only by
# reaching one. The grader notes which TODOs each test's processes raised (tools/workshop/todo_hook.py),
# so for every failure the proof knows why, and accepts only two reasons: the test is one that a
# reached TODO's exercise lists, or the TODO says (`# stops: every run`) that it stops more than its own.
# That the snapshot passes every listed test is the suite's own run of chapters/0N (tools/test.sh):
# each listed test is one the suite's table runs for chapter N (checked: none is "not run" here).

def waiting(chapter: int) -> list[exercises.Exercise]:
    """The chapter's exercises that can wait (no `# stops:`), if it has exercises on every run's path too."""
    found = exercises.of_chapter(chapter)
    can_wait = [e for e in found if not e.stops]
    return can_wait if len(can_wait) < len(found) else []


@needs_root
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_the_starting_point_fails_its_exercises_tests_and_nothing_else(chapter, tmp_path):
    start = str(tmp_path / "all" / f"ch{chapter:02}")
    result = workshop("start", str(chapter), start)
    assert result.returncode == 0, result.stderr
    only_holes_differ(chapter, start, os.path.join(REPO, "chapters", chapters.CHAPTERS[chapter]))
    runnable = subprocess.run([sys.executable, "-m", os.path.basename(start), "--help"], cwd=os.path.dirname(start),
                              capture_output=True, text=True, timeout=60)
    assert runnable.returncode == 0 and "run" in runnable.stdout, runnable.stderr  # a whole program, holes and all
    # Every test the chapter introduces (its own tests in tests/table.py), not only the exercises'.
    started = results(grade(chapter, start, "--own"))
    print(f"chapter {chapter}'s starting point, each test it introduces:", *classified(started), sep="\n")
    assert "not run" not in {r["outcome"] for r in started.values()}
    each_exercise_fails_its_tests(exercises.of_chapter(chapter), started, "on the starting point")
    assert not unexplained(chapter, started), "\n".join(unexplained(chapter, started) + ["", *classified(started)])
    if waiting(chapter):
        the_exercises_that_can_wait_fail_only_their_own_tests(chapter, started, tmp_path)


def the_exercises_that_can_wait_fail_only_their_own_tests(chapter: int, started: dict, tmp_path) -> None:
    """A TODO on every run's path stops the runs that would reach the others: write those, then look.
    A test runs again only if it reached a TODO that is written now: the others run the same code."""
    can_wait, stops = waiting(chapter), {e.id for e in exercises.of_chapter(chapter) if e.stops}
    others = str(tmp_path / "others" / f"ch{chapter:02}")
    assert workshop("start", str(chapter), others, "--exercise", ",".join(e.id for e in can_wait)).returncode == 0
    again = [test for test, r in started.items() if set(r["reached"]) & stops]
    together = {**started, **results(grade(chapter, others, *(f"--test={test}" for test in again)))}
    print(f"chapter {chapter} with only {', '.join(e.id for e in can_wait)} as TODOs:", *classified(together), sep="\n")
    each_exercise_fails_its_tests(can_wait, together, "with the exercises on every run's path written")
    assert not unexplained(chapter, together), "\n".join(unexplained(chapter, together) + ["", *classified(together)])
    # Alone, each one: a TODO may stop a test before it reaches another's.
    for exercise in can_wait:
        again = sorted(test for test, r in together.items() if set(r["reached"]) - {exercise.id}
                       or (test in listed_tests([exercise], together) and exercise.id not in r["reached"]))
        if not again:
            continue
        alone = str(tmp_path / f"only{exercise.number}" / f"ch{chapter:02}")
        assert workshop("start", str(chapter), alone, "--exercise", exercise.id).returncode == 0
        found = results(grade(chapter, alone, *(f"--test={test}" for test in again)))
        each_exercise_fails_its_tests([exercise], found, f"with only exercise {exercise.id} a TODO")
        for test, r in found.items():
            if r["outcome"] in ("failed", "timeout"):
                assert exercise.id in r["reached"] and test in listed_tests([exercise], found), \
                    f"with only exercise {exercise.id} a TODO, {test} {r['outcome']}: {r['expected']}" \
                    f" (reached {r['reached'] or 'no TODO'}; {exercise.id} does not list it)"


def each_exercise_fails_its_tests(chosen: list[exercises.Exercise], found: dict[str, dict], where: str) -> None:
    """Every test these exercises list fails (a skip proves nothing, but one proves it per exercise)."""
    for exercise in chosen:
        tests = listed_tests([exercise], found)
        for test in tests:
            assert found[test]["outcome"] in ("failed", "timeout", "skipped"), \
                f"{test} {found[test]['outcome']} {where}, though exercise {exercise.id} lists it"
        assert any(found[test]["outcome"] in ("failed", "timeout") for test in tests), \
            f"no test of exercise {exercise.id} failed {where}: {[found[t]['expected'] for t in tests]}"


def results(report: dict) -> dict[str, dict]:
    """Each test the grader ran: its outcome, the line it expected, the TODOs it reached."""
    return {t["test"]: t for e in report["exercises"] for t in e["tests"]}


def listed_tests(chosen: list[exercises.Exercise], found: dict[str, dict]) -> set[str]:
    """The tests (cases included) that these exercises list, among those the grader ran."""
    return {test for test in found for e in chosen for named in e.tests if test == named or test.startswith(named + "[")}


def unexplained(chapter: int, found: dict[str, dict]) -> list[str]:
    """The failures that no reached TODO explains: a TODO explains the tests its exercise lists,
    and every test if its exercise stops every run (or push, or build)."""
    chosen = exercises.of_chapter(chapter)
    problems = []
    for test, r in found.items():
        if r["outcome"] not in ("failed", "timeout"):
            continue
        explains = {e.id for e in chosen if e.stops or test in listed_tests([e], {test: r})}
        if not set(r["reached"]) & explains:
            why = (f"at the TODO of exercise {', '.join(r['reached'])}, which does not list it" if r["reached"]
                   else "without reaching any TODO: something besides the holes is broken")
            problems.append(f"{test} {r['outcome']} {why} ({r['expected']})")
    return problems


def classified(found: dict[str, dict]) -> list[str]:
    """One line per test: how it went, and which TODOs it reached."""
    return [f"{r['outcome']:8} {','.join(r['reached']) or '-':9} {test}" for test, r in sorted(found.items())]


def only_holes_differ(chapter: int, start: str, snapshot: str) -> None:
    """The starting point is the snapshot, file for file, but for the files that hold its exercises."""
    holed = {b.path.removeprefix("final/") for e in exercises.of_chapter(chapter) for b in e.blocks}
    for directory, _, files in os.walk(snapshot):
        for name in files:
            relative = os.path.relpath(os.path.join(directory, name), snapshot)
            if name.endswith(".py") and relative not in holed:
                assert filecmp.cmp(os.path.join(snapshot, relative), os.path.join(start, relative), shallow=False), relative
    for relative in holed:
        with open(os.path.join(start, relative)) as f:
            text = f.read()
        compile(text, relative, "exec")
        assert "raise NotImplementedError(\"exercise " in text, relative


# --- students and instructors getting it wrong -------------------------------------------------

def test_start_into_a_directory_that_is_not_empty_is_refused_and_touches_nothing(tmp_path):
    (tmp_path / "ch01").mkdir()
    (tmp_path / "ch01" / "mine.py").write_text("work\n")
    result = workshop("start", "1", str(tmp_path / "ch01"))
    assert result.returncode == 2 and "not an empty directory" in result.stderr and "hint:" in result.stderr
    assert os.listdir(tmp_path / "ch01") == ["mine.py"] and os.listdir(tmp_path) == ["ch01"]


@pytest.mark.parametrize("args, words", [
    (["start", "9", "DIR"], "there is no chapter 9"),
    (["start", "x", "DIR"], "a chapter is a number from 1 to 7"),
    (["check", "0", "DIR"], "there is no chapter 0"),
    (["start", "2", "DIR/ch02", "--exercise", "2.9"], "chapter 2 has no exercise 2.9"),
    (["check", "2", "DIR", "--test", "test_run.py"], "is not a test's name"),
    (["start", "1", "DIR/my-copy"], "is not a Python name"),
    (["start", "1", "DIR/json"], "is a module of Python's own"),
    (["check", "3", "DIR/nowhere"], "no such directory"),
    (["check", "3", "DIR"], "is not a chapter package"),
])
def test_an_unknown_chapter_or_a_wrong_directory_is_refused_with_a_hint(tmp_path, args, words):
    result = workshop(*(a.replace("DIR", str(tmp_path)) for a in args))
    assert result.returncode == 2 and words in result.stderr and "\nhint: " in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and os.listdir(tmp_path) == []  # and nothing was made


def test_start_with_chosen_exercises_leaves_only_those_as_todos(tmp_path):
    start = str(tmp_path / "ch03")
    result = workshop("start", "3", start, "--exercise", "3.2,3")
    assert result.returncode == 0, result.stderr
    todos = [m[1] for folder, _, files in os.walk(start) for name in files if name.endswith(".py")
             for m in re.finditer(r'raise NotImplementedError\("exercise (\d\.\d)', open(os.path.join(folder, name)).read())]
    assert sorted(set(todos)) == ["3.2", "3.3"]  # 3.1 and 3.4 come written, as in the snapshot
    with open(os.path.join(start, "EXERCISES.md")) as f:
        guide = f.read()
    assert "## 3.2:" in guide and "## 3.3:" in guide and "## 3.1:" not in guide


def test_an_unknown_exercise_and_a_started_chapter_checked_as_another_are_refused(tmp_path):
    start = str(tmp_path / "ch02")
    assert workshop("start", "2", start).returncode == 0
    unknown = workshop("check", "2", start, "--exercise", "2.9")
    assert unknown.returncode == 2 and "no exercise 2.9" in unknown.stderr and "2.1" in unknown.stderr
    other = workshop("check", "3", start)
    assert other.returncode == 2 and "started as chapter 2" in other.stderr and "check 2" in other.stderr


def test_an_earlier_chapters_package_checked_as_a_later_chapter_is_refused_with_its_missing_modules(tmp_path):
    copy = shutil.copytree(os.path.join(REPO, "chapters", chapters.CHAPTERS[2]), tmp_path / "mine")
    result = workshop("check", "4", str(copy))
    assert result.returncode == 2 and "is not a chapter 4 package" in result.stderr, result.stderr
    assert "cgroups.py" in result.stderr and "looks like chapter 2" in result.stderr and "hint:" in result.stderr


def test_a_syntax_error_is_named_with_its_file_and_line_before_any_test_runs(tmp_path):
    start = str(tmp_path / "ch01")
    assert workshop("start", "1", start).returncode == 0
    write_solution(start, "process.py", "1.4", "code = os.waitstatus_to_exitcode(status\nreturn code")
    result = workshop("check", "1", start)
    assert result.returncode == 2 and "process.py, line" in result.stderr and "SyntaxError" in result.stderr
    assert "hint:" in result.stderr and "PASS" not in result.stdout


@needs_root
def test_code_that_hangs_fails_its_test_after_the_time_limit_and_leaves_nothing_running(tmp_path):
    start = str(tmp_path / "ch01")
    assert workshop("start", "1", start).returncode == 0
    write_solution(start, "process.py", "1.1", "while True:\n    pass")
    report = grade(1, start, "--exercise", "1.1", "--timeout", "3")
    for test in report["exercises"][0]["tests"]:
        assert test["outcome"] == "timeout" and "no answer after 3 s" in test["expected"], test
    assert not [pid for pid in os.listdir("/proc") if pid.isdigit() and cwd_of(pid) == str(tmp_path)]


@needs_root
def test_code_that_leaves_a_mount_fails_and_the_grader_removes_the_mount(tmp_path):
    start = str(tmp_path / "ch01")
    assert workshop("start", "1", start).returncode == 0
    shutil.copy(os.path.join(REPO, "chapters", chapters.CHAPTERS[1], "process.py"), start)  # 1.1, 1.3, 1.4 done
    # Chapter 1 has no mount namespace: this tmpfs lands on the host, and nothing unmounts it.
    write_solution(start, "chroot.py", "1.2", 'libc.mount("tmpfs", os.path.join(rootfs, "tmp"), "tmpfs", 0)\n'
                                              'libc.chroot(rootfs)\nos.chdir("/")')
    report = grade(1, start, "--exercise", "1.2")
    failed = [t for e in report["exercises"] for t in e["tests"] if t["outcome"] == "failed"]
    assert failed and all("left behind" in t["expected"] for t in failed), report
    assert scratch_mounts() == []


def write_solution(package: str, file: str, exercise_id: str, code: str) -> None:
    """Replace the stub of an exercise with `code`, as a student would."""
    path = os.path.join(package, file)
    with open(path) as f:
        text = f.read()
    stub = re.search(rf"^( *)# TODO exercise {re.escape(exercise_id)}:.*?\n *raise NotImplementedError\(.*?\)\n",
                     text, re.MULTILINE | re.DOTALL)
    indent = stub[1]
    body = "".join(f"{indent}{line}\n" for line in code.splitlines())
    with open(path, "w") as f:
        f.write(text[:stub.start()] + body + text[stub.end():])


def cwd_of(pid: str) -> str:
    """Where a process stands: the suite runs the engine from the folder that holds the package."""
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return ""


def scratch_mounts() -> list[str]:
    """Mounts under the grader's scratch directories."""
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if clean.SCRATCH_PREFIX in line.split()[4]]


# --- a class's results ----------------------------------------------------------------------

def result_file(path, student: str, chapter: int, passed: dict[str, bool]) -> str:
    tests = [{"test": f"test_x.py::test_{i}", "outcome": "passed" if ok else "failed"} for i, ok in passed.items()]
    path.write_text(json.dumps({"student": student, "chapter": chapter, "kept": sum(passed.values()),
                                "total": len(passed), "exercises": [
                                    {"id": i, "title": "t", "passed": ok, "tests": [t]}
                                    for (i, ok), t in zip(passed.items(), tests)]}))
    return str(path)


def test_sheet_shows_each_students_exercises_per_chapter_and_names_a_file_it_cannot_read(tmp_path):
    files = [result_file(tmp_path / "ada.json", "ada", 3, {"3.1": True, "3.2": True}),
             result_file(tmp_path / "bob.json", "bob", 3, {"3.1": True, "3.2": False})]
    (tmp_path / "junk.json").write_text("not json")
    result = workshop("sheet", *files, str(tmp_path / "junk.json"))
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines() if line.startswith("  ")}
    assert rows["ada"] == ["2/2", "x", "x"] and rows["bob"] == ["1/2", "x", "."]
    assert "1 of 2 students have done every exercise" in result.stdout and "junk.json" in result.stderr


# --- doctor and clean ----------------------------------------------------------------------

@needs_root
def test_doctor_checks_root_kernel_cgroups_busybox_and_disk_and_says_ready():
    result = workshop("doctor", timeout=60)
    assert result.returncode == 0, result.stdout
    for what in ("root", "kernel", "namespaces", "cgroups", "busybox", "disk"):
        assert re.search(rf"^ok\s+{what}\b", result.stdout, re.MULTILINE), result.stdout
    assert result.stdout.rstrip().endswith("ready for the workshop")


@needs_root
def test_clean_removes_a_dead_runs_scratch_mount_and_cgroup_and_nothing_in_use(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tempfile.mkdtemp(prefix=clean.SCRATCH_PREFIX)
    held = tempfile.mkdtemp(prefix=clean.SCRATCH_PREFIX)
    lock = clean.hold(held)
    hierarchy = next(p for p in ("/sys/fs/cgroup/pids", "/sys/fs/cgroup/unified", "/sys/fs/cgroup")
                     if os.path.exists(os.path.join(p, "cgroup.procs")))
    cgroup = os.path.join(hierarchy, f"{clean.TEST_CGROUP}{dead.pid}-workshop")
    try:
        os.makedirs(os.path.join(stale, "rootfs/proc"))
        subprocess.run(["mount", "-t", "tmpfs", "tmpfs", os.path.join(stale, "rootfs/proc")], check=True)
        os.mkdir(cgroup)
        result = workshop("clean", timeout=120)
        assert result.returncode == 0, result.stderr
        assert not os.path.exists(stale) and not os.path.exists(cgroup)
        assert f"removed {stale}" in result.stdout and os.path.isdir(held)
    finally:
        os.close(lock)
        clean.sweep_scratch(held)
        for leftover in (stale, cgroup):
            if os.path.exists(leftover):
                clean.sweep_scratch(leftover) if leftover == stale else os.rmdir(leftover)
