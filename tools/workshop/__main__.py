"""python3 -m tools.workshop: the command line of the workshop (see __init__.py)."""

import argparse
import json
import os
import sys
from typing import NoReturn

from .. import exercises
from . import WorkshopError, clean, doctor, grade, report, sheet, start
from . import __doc__ as OVERVIEW

MARKS = {True: "ok  ", False: "FAIL", None: "warn"}


def cmd_start(args: argparse.Namespace) -> int:
    chosen = start.start(args.chapter, args.dir, args.exercise.split(",") if args.exercise else None)
    target = os.path.abspath(args.dir)
    print(f"chapter {args.chapter}'s starting point is in {target}: {len(chosen)} exercises")
    for exercise in chosen:
        files = ", ".join(sorted({b.path.removeprefix("final/") for b in exercise.blocks}))
        print(f"  {exercise.id:5} {exercise.title}  ({files})")
    print(f"\nread {os.path.join(target, 'EXERCISES.md')}, then grade your work with:\n"
          f"  sudo python3 -m tools.workshop check {args.chapter} {target}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    groups = grade.grade(args.chapter, args.dir, args.exercise, args.full, args.timeout, args.own, args.test)
    if args.json:
        print(json.dumps(report.as_json(args.chapter, args.dir, groups, args.student), indent=1))
    else:
        print(report.scoreboard(args.chapter, args.dir, groups))
    return 0 if report.all_kept(groups) else 1


def cmd_doctor(_args: argparse.Namespace) -> int:
    findings = doctor.diagnose()
    for f in findings:
        print(f"{MARKS[f.ok]}  {f.what:16} {f.detail}")
        if f.hint and f.ok is not True:
            print(f"      {'':16} hint: {f.hint}")
    failed = [f.what for f in findings if f.ok is False]
    print(f"\n{'not ready: fix ' + ', '.join(failed) if failed else 'ready for the workshop'}")
    return 1 if failed else 0


def cmd_clean(args: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        raise WorkshopError("clean needs root (it unmounts and removes cgroups)", "sudo python3 -m tools.workshop clean")
    done = clean.clean(args.under)
    print("\n".join(done) if done else "nothing to clean")
    return 0


def cmd_sheet(args: argparse.Namespace) -> int:
    latest, problems = sheet.read_results(args.files)
    print("\n".join(sheet.table(latest)).rstrip())
    for problem in problems:
        print(problem, file=sys.stderr)
    return 0


def chapter(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a chapter is a number from 1 to 7, not {text!r}") from None


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one `error:` line and a `hint:`, as every other refusal."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message}\nhint: {self.prog} --help\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python3 -m tools.workshop", description=OVERVIEW,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    p = commands.add_parser("start", help="write chapter N's starting point into DIR")
    p.add_argument("chapter", type=chapter, metavar="N")
    p.add_argument("dir", metavar="DIR", help="a new (or empty) directory, named like a Python package")
    p.add_argument("--exercise", metavar="K[,K]", help="only these exercises are TODOs (the chapter's others "
                   "come written): 3.2,3.3 or 2,3")
    p.set_defaults(handler=cmd_start)
    p = commands.add_parser("check", help="grade DIR as chapter N with the test suite")
    p.add_argument("chapter", type=chapter, metavar="N")
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--exercise", metavar="K", help="only exercise K (3.2, or 2 for chapter 3's second)")
    p.add_argument("--full", action="store_true", help="every test of the chapter, not only the exercises'")
    p.add_argument("--own", action="store_true",
                   help="the exercises' tests and every other test chapter N introduces (not the earlier chapters')")
    p.add_argument("--test", action="append", default=[], metavar="FILE::NAME",
                   help="run this test too (repeatable): test_run.py::test_x or test_run.py::test_x[case]")
    p.add_argument("--json", action="store_true", help="the results as JSON, for a class sheet")
    p.add_argument("--student", metavar="NAME", help="the name --json records (default: the user who ran sudo)")
    p.add_argument("--timeout", type=int, default=120, metavar="S", help="seconds one test may take (120)")
    p.set_defaults(handler=cmd_check)
    p = commands.add_parser("sheet", help="a class's results, from the files check --json wrote")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.set_defaults(handler=cmd_sheet)
    p = commands.add_parser("doctor", help="check this machine: root, kernel, cgroups, busybox, disk")
    p.set_defaults(handler=cmd_doctor)
    p = commands.add_parser("clean", help="remove mounts, cgroups and scratch dirs that graded code left")
    p.add_argument("--under", action="append", default=[], metavar="DIR",
                   help="also unmount everything below DIR (say, a rootfs whose /proc stayed mounted)")
    p.set_defaults(handler=cmd_clean)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return args.handler(args)
    except (WorkshopError, exercises.ExerciseError) as err:
        hint = getattr(err, "hint", "fix the marker in final/ (see tools/exercises.py)")
        print(f"error: {getattr(err, 'problem', err)}\nhint: {hint}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; the tests that ran have cleaned up after themselves", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
