"""The suite itself: a green run must mean the behaviour is there.

The easiest way for a security or build test to go green is an engine that
does nothing: "the secret was not printed" holds when no container ran.
So the suite is run against a copy of final/ whose entry point only prints
an error and exits 125, and every test of the files below that is not about
bad input (marked `bad_input`) must fail there.
"""

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree

from conftest import REPO, needs_root

pytestmark = needs_root
MUST_FAIL = ("test_escape.py", "test_namespaces.py", "test_build.py")
BROKEN_MAIN = '''import sys
print("error: this engine refuses everything\\nhint: it is tests/test_suite.py's broken copy", file=sys.stderr)
sys.exit(125)
'''


def broken_copy_of_final(directory: str) -> str:
    """final/ with an entry point that only prints an error and exits 125."""
    copy = os.path.join(directory, "final")
    shutil.copytree(os.path.join(REPO, "final"), copy, ignore=shutil.ignore_patterns("__pycache__"))
    with open(os.path.join(copy, "__main__.py"), "w") as f:
        f.write(BROKEN_MAIN)
    return copy


def outcomes(junit_xml: str) -> dict[str, str]:
    """Each test case in a JUnit report: 'passed', 'failure', 'error' or 'skipped'."""
    found = {}
    for case in ElementTree.parse(junit_xml).iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        found[f"{case.get('classname')}.{case.get('name')}"] = kinds[0] if kinds else "passed"
    return found


def test_every_test_not_about_bad_input_fails_against_an_engine_that_refuses_everything(tmp_path):
    engine = broken_copy_of_final(str(tmp_path / "broken"))
    report = str(tmp_path / "report.xml")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", *(os.path.join(REPO, "tests", f) for f in MUST_FAIL),
         "--impl", engine, "-m", "not bad_input", "-q", "-p", "no:cacheprovider", f"--junitxml={report}"],
        cwd=REPO, capture_output=True, text=True, timeout=900)
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]  # 1: some tests failed
    found = outcomes(report)
    assert {name.split(".")[1] for name in found} == {f[:-3] for f in MUST_FAIL}, sorted(found)
    false_greens = sorted(name for name, outcome in found.items() if outcome not in ("failure", "error"))
    assert false_greens == [], f"these pass (or skip) against an engine that runs nothing: {false_greens}"
