"""Generate the chapter snapshots in chapters/ from the one source in final/.

    python3 tools/chapters.py            write chapters/01_chroot ... 07_dockerfile
    python3 tools/chapters.py --check    exit 1, with a diff, if they are stale
    python3 tools/chapters.py --diff 1 2     the lesson: what chapter 2 changes
    python3 tools/chapters.py --diff 6 final --stat   one line per changed file

Markers (see CONTRIBUTING.md) are comments in final/:

    # chapter: 02                  first line of a file: the file appears in 02
    # >>> chapter 02               a block that appears from chapter 02 on ...
    # <<< chapter 02               ... up to here
    code()           # ch 03       one line, from chapter 03 on
    # old()          # ch 01-02    one retired line: commented out in final/,
                                   live (uncommented) in chapters 01-02
    extra()          # ch final    one line only in final/

A chapter spec is `NN` (from chapter NN on), `NN-MM` (chapters NN to MM
only: code that a later chapter replaces) or `final` (only in final/).
Snapshots contain no markers; final/ runs as it is, markers and all, so the
lines of an `NN-MM` block are commented out in final/ (`# ` after the
marker's indentation) and the generator uncomments them.
"""

import argparse
import difflib
import filecmp
import os
import re
import shutil
import sys
import tempfile

try:  # the workshop's exercise markers (tools/exercises.py): no snapshot shows them
    from .exercises import is_marker as is_exercise_marker
except ImportError:  # run as a script
    from exercises import is_marker as is_exercise_marker

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = os.path.join(ROOT, "final")
TARGET = os.path.join(ROOT, "chapters")
CHAPTERS = {1: "01_chroot", 2: "02_namespaces", 3: "03_cgroups", 4: "04_layers",
            5: "05_images", 6: "06_registry", 7: "07_dockerfile"}
FINAL = 99

FILE_MARKER = re.compile(r"^# chapter: (\S+)\s*$")
BLOCK_START = re.compile(r"^\s*# >>> chapter (\S+)\s*$")
BLOCK_END = re.compile(r"^\s*# <<< chapter (\S+)\s*$")
SPEC = re.compile(r"^(?:(\d\d)(?:-(\d\d))?|final)$")
SNIPPET_MARKER = re.compile(r"^\s*# --8<-- \[(?:start|end):[\w-]+\]\s*$")  # the docs' named sections
LINE_TAG = re.compile(r"\s+# ch (\d\d(?:-\d\d)?|final)$")
LOOKS_LIKE_TAG = re.compile(r"#\s*ch\s*(?:\d|final)[\w-]*\s*$")  # a tag someone meant to write


class MarkerError(Exception):
    pass


def chapter_range(spec: str, where: str) -> range:
    """The chapters a spec covers: '03' is 3..final, '01-01' is 1, 'final' is final."""
    match = SPEC.match(spec)
    if not match:
        raise MarkerError(f"{where}: bad chapter spec {spec!r} (want NN, NN-MM or final)")
    if spec == "final":
        return range(FINAL, FINAL + 1)
    first = int(match.group(1))
    last = int(match.group(2)) if match.group(2) else FINAL
    return range(first, last + 1)


def render(text: str, chapter: int, path: str) -> str | None:
    """The file as chapter `chapter` shows it, or None if it is not there yet."""
    lines = text.splitlines(keepends=True)
    if lines and (match := FILE_MARKER.match(lines[0])):
        if chapter not in chapter_range(match.group(1), f"{path}:1"):
            return None
        lines = lines[1:]
    out: list[str] = []
    stack: list[tuple[str, bool, str | None]] = []  # (spec, visible, indent to uncomment at)
    skip_blank = False
    for number, line in enumerate(lines, start=2 if text.startswith("# chapter:") else 1):
        where = f"{path}:{number}"
        if is_exercise_marker(line):
            continue
        if match := BLOCK_START.match(line):
            covered = chapter_range(match.group(1), where)
            visible = chapter in covered and all(v for _, v, _ in stack)
            retired = FINAL not in covered  # commented out in final/
            stack.append((match.group(1), visible, line[:line.index("#")] if retired else None))
            continue
        if match := BLOCK_END.match(line):
            if not stack or stack[-1][0] != match.group(1):
                raise MarkerError(f"{where}: '<<< chapter {match.group(1)}' closes nothing open")
            _, visible, _ = stack.pop()
            # A hidden block between two blank lines would leave two: drop one.
            skip_blank = not visible and bool(out) and out[-1].strip() == ""
            continue
        if stack and not stack[-1][1]:
            continue
        for _, _, indent in stack:
            if indent is not None:
                line = uncomment(line, indent, where)
        line = render_line_tag(line, chapter, where)
        if line is None:
            skip_blank = bool(out) and out[-1].strip() == ""
            continue
        if skip_blank and line.strip() == "":
            skip_blank = False
            continue
        skip_blank = False
        out.append(line)
    if stack:
        raise MarkerError(f"{path}: '>>> chapter {stack[-1][0]}' is never closed")
    return collapse_blank_runs("".join(out))


def render_line_tag(line: str, chapter: int, where: str) -> str | None:
    """A line with a trailing `# ch NN` tag, as `chapter` shows it (None: not there).

    The tag goes; a retired line (`# ch NN-MM`) is commented out in final/
    and gets its `# ` back off in the chapters that still have it.
    """
    body = line.rstrip("\n")
    match = LINE_TAG.search(body)
    if not match:
        if LOOKS_LIKE_TAG.search(body):
            raise MarkerError(f"{where}: bad one-line chapter tag (want '  # ch NN', '# ch NN-MM' or '# ch final')")
        return line
    covered = chapter_range(match.group(1), where)
    if chapter not in covered:
        return None
    body = body[:match.start()]
    if FINAL not in covered:
        indent = body[:len(body) - len(body.lstrip())]
        body = uncomment(body + "\n", indent, where).rstrip("\n")
    return body + "\n"


def collapse_blank_runs(text: str) -> str:
    """At most two blank lines in a row and none at the end, as in final/ (hidden code can leave more)."""
    text = re.sub(r"\n(?:[ \t]*\n){3,}", "\n\n\n", text)
    return text.rstrip("\n") + "\n" if text.strip() else text


def uncomment(line: str, indent: str, where: str) -> str:
    """Undo the `# ` that keeps a retired block's line inert in final/."""
    if line.strip() == "#":
        return "\n"
    if not line.startswith(indent + "# "):
        raise MarkerError(f"{where}: a line of a retired block must be commented out as '{indent}# ...'")
    return indent + line[len(indent) + 2:]


def source_files() -> list[str]:
    """The files of final/, relative to it, in a stable order."""
    found = []
    for directory, subdirs, files in os.walk(SOURCE):
        subdirs[:] = sorted(d for d in subdirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith(".py"):
                found.append(os.path.relpath(os.path.join(directory, name), SOURCE))
    return found


def write_snapshot(chapter: int, target: str) -> None:
    """Write chapter `chapter`'s package into `target` (emptied first)."""
    shutil.rmtree(target, ignore_errors=True)
    for relative in source_files():
        with open(os.path.join(SOURCE, relative)) as f:
            text = render(f.read(), chapter, f"final/{relative}")
        if text is None:
            continue
        destination = os.path.join(target, relative)
        os.makedirs(os.path.dirname(destination), exist_ok=True)
        with open(destination, "w") as f:
            f.write(text)


def write_all(target_root: str) -> None:
    os.makedirs(target_root, exist_ok=True)
    for chapter, name in CHAPTERS.items():
        write_snapshot(chapter, os.path.join(target_root, name))
    with open(os.path.join(target_root, "README.md"), "w") as f:
        f.write("# Generated: do not edit\n\nEach folder is a snapshot of `final/` at the end of a "
                "chapter, made by `python3 tools/chapters.py`.\nEdit `final/` and regenerate.\n")


def differences(expected_root: str, actual_root: str) -> list[str]:
    """Unified diffs between two trees (the files that differ, are missing or extra)."""
    diffs = []
    comparison = [filecmp.dircmp(expected_root, actual_root, ignore=["__pycache__"])]
    while comparison:
        cmp = comparison.pop()
        for name in cmp.left_only:
            diffs.append(f"missing: {os.path.relpath(os.path.join(cmp.right, name), ROOT)}\n")
        for name in cmp.right_only:
            diffs.append(f"stale: {os.path.relpath(os.path.join(cmp.right, name), ROOT)}\n")
        for name in cmp.diff_files:
            with open(os.path.join(cmp.left, name)) as a, open(os.path.join(cmp.right, name)) as b:
                rel = os.path.relpath(os.path.join(cmp.right, name), ROOT)
                diffs.extend(difflib.unified_diff(b.readlines(), a.readlines(), rel, f"{rel} (generated)"))
        comparison.extend(cmp.subdirs.values())
    return diffs


def check() -> int:
    with tempfile.TemporaryDirectory() as scratch:
        write_all(scratch)
        if not os.path.isdir(TARGET):
            print("chapters/ is missing: run python3 tools/chapters.py")
            return 1
        diffs = differences(scratch, TARGET)
    if diffs:
        sys.stdout.writelines(diffs)
        print("\nchapters/ is stale: run python3 tools/chapters.py and commit the result")
        return 1
    print(f"chapters/ matches final/ ({len(CHAPTERS)} snapshots)")
    return 0


def chapter_number(spec: str) -> int:
    """'2', '02', '02_namespaces' or 'final', as a chapter number (argparse type)."""
    if spec == "final":
        return FINAL
    number = spec.split("_", 1)[0]
    if number.isdigit() and int(number) in CHAPTERS:
        return int(number)
    raise argparse.ArgumentTypeError(f"no chapter {spec!r}: want 1 to {len(CHAPTERS)} or final")


def snapshot_name(chapter: int) -> str:
    return "final" if chapter == FINAL else CHAPTERS[chapter]


def read_lesson_lines(path: str) -> list[str] | None:
    """A snapshot file's lines without the docs' snippet markers, None if absent."""
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return [line for line in f if not SNIPPET_MARKER.match(line)]


def snapshot_paths(folder: str) -> set[str]:
    """The .py files of a snapshot, relative to it, subpackages included."""
    found = set()
    for directory, _, files in os.walk(folder):
        found.update(os.path.relpath(os.path.join(directory, name), folder)
                     for name in files if name.endswith(".py"))
    return found


def file_diffs(first: int, second: int) -> list[tuple[str, list[str]]]:
    """(path, unified diff lines) for each file that chapter `second` changes."""
    with tempfile.TemporaryDirectory() as scratch:
        a, b = os.path.join(scratch, "a"), os.path.join(scratch, "b")
        write_snapshot(first, a)
        write_snapshot(second, b)
        changed = []
        for relative in sorted(snapshot_paths(a) | snapshot_paths(b)):
            old = read_lesson_lines(os.path.join(a, relative))
            new = read_lesson_lines(os.path.join(b, relative))
            if old == new:
                continue
            # As git shows them: a file that appears or goes comes from or goes to /dev/null.
            before = "/dev/null" if old is None else f"{snapshot_name(first)}/{relative}"
            after = "/dev/null" if new is None else f"{snapshot_name(second)}/{relative}"
            changed.append((relative, list(difflib.unified_diff(old or [], new or [], before, after))))
    return changed


def diff_stat(changed: list[tuple[str, list[str]]]) -> list[str]:
    """git's --stat: one line per file, `path | N +++--`, then the totals."""
    counts = []
    for relative, lines in changed:
        body = [line for line in lines if not line.startswith(("---", "+++"))]
        counts.append((relative, sum(line.startswith("+") for line in body),
                       sum(line.startswith("-") for line in body)))
    width = max((len(relative) for relative, _, _ in counts), default=0)
    biggest = max((added + removed for _, added, removed in counts), default=0)
    scale = min(1.0, 50 / biggest) if biggest else 1.0
    out = []
    for relative, added, removed in counts:
        bar = "+" * round(added * scale) + "-" * round(removed * scale)
        out.append(f" {relative:<{width}} | {added + removed:4} {bar}".rstrip() + "\n")
    added, removed = sum(c[1] for c in counts), sum(c[2] for c in counts)
    out.append(f" {len(counts)} files changed, {added} insertions(+), {removed} deletions(-)\n")
    return out


def lesson_diff(first: int, second: int, stat: bool = False) -> int:
    changed = file_diffs(first, second)
    if stat:
        sys.stdout.writelines(diff_stat(changed))
    else:
        for _, lines in changed:
            sys.stdout.writelines(lines)
    sys.stdout.flush()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail if chapters/ is stale")
    parser.add_argument("--diff", nargs=2, type=chapter_number, metavar=("A", "B"),
                        help="the lesson: what chapter B changes from chapter A (1..7 or final)")
    parser.add_argument("--stat", action="store_true", help="with --diff: one line per changed file")
    args = parser.parse_args()
    if args.stat and not args.diff:
        parser.error("--stat goes with --diff A B")
    try:
        if args.check:
            return check()
        if args.diff:
            return lesson_diff(*args.diff, stat=args.stat)
        write_all(TARGET)
    except MarkerError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # `--diff 1 2 | head` closed the pipe: not an error. Point stdout at
        # /dev/null so that the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    print(f"wrote {len(CHAPTERS)} snapshots to chapters/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
