"""`sheet`: a class's results, one line per student and chapter, from the files `check --json` wrote."""

import json
import os

from . import WorkshopError


def read_results(paths: list[str]) -> tuple[dict[tuple[int, str], dict], list[str]]:
    """The latest result per (chapter, student), and a line per file that could not be read."""
    latest: dict[tuple[int, str], dict] = {}
    problems = []
    for path in sorted(paths, key=lambda p: os.path.getmtime(p) if os.path.exists(p) else 0):
        try:
            with open(path) as f:
                result = json.load(f)
            key = (int(result["chapter"]), str(result["student"]))
            result["exercises"] = [e for e in result["exercises"] if e["id"]]  # --full's extra group aside
        except (OSError, ValueError, KeyError, TypeError) as err:
            problems.append(f"skipped {path}: not a result of check --json ({type(err).__name__})")
            continue
        latest[key] = result
    if not latest:
        raise WorkshopError("no results to show", "give the files that `check N DIR --json > FILE` wrote")
    return latest, problems


def table(latest: dict[tuple[int, str], dict]) -> list[str]:
    """Per chapter: a row per student with promises kept and a mark per exercise (x done, . not yet)."""
    lines = []
    for chapter in sorted({c for c, _ in latest}):
        rows = {student: r for (c, student), r in sorted(latest.items()) if c == chapter}
        ids = sorted({e["id"] for r in rows.values() for e in r["exercises"]},
                     key=lambda i: [int(n) for n in i.split(".")])
        width = max(len("student"), *(len(s) for s in rows))
        lines.append(f"chapter {chapter}")
        lines.append(f"  {'student':{width}}  kept    " + "  ".join(f"{i:>4}" for i in ids))
        for student, r in rows.items():
            done = {e["id"]: e["passed"] for e in r["exercises"]}
            marks = "  ".join(f"{('x' if done[i] else '.') if i in done else '-':>4}" for i in ids)
            lines.append(f"  {student:{width}}  {r['kept']:>3}/{r['total']:<3} {marks}")
        finished = sum(all(e["passed"] for e in r["exercises"]) for r in rows.values())
        lines += [f"  {finished} of {len(rows)} students have done every exercise graded", ""]
    return lines
