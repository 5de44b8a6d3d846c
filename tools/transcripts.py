"""Run the lessons' console transcripts; fail where the engine no longer prints what they show.

    sudo python3 tools/transcripts.py docs/chapters/01-chroot.md ...   (no page: every page)
    sudo python3 tools/transcripts.py --show PAGE     ... and print what each command printed

A transcript is a ```console block of a page: `$ command` lines (a line that
ends in `\\` goes on on the next, and so does a here-document up to its end
word), each followed by the output that the lesson
promises. In that output `...` stands for what varies from run to run (ids,
digests, times, sizes, addresses): a line that is only `...` matches any
number of lines, and `...` inside a line matches any text. Everything else
must match exactly, trailing blanks aside. A command with no output shown
must print nothing.

A page runs as one shell session, its blocks top to bottom, as a reader who
follows along would type them, in a sandbox that leaves the machine as it
was: mount, PID and network namespaces of its own (every process it started
ends with it; only `lo`, so a registry on port 5000 meets no other), a tmpfs
on /tmp and on /var/lib/dockyard, HOME in /tmp, and the repository mounted at
/tmp/dockyard as the working directory. /tmp/rootfs holds a busybox root
filesystem, as getting started leaves it. We run as root, so `sudo` only runs
its command. A block right after the comment `<!-- transcript: rootless -->`
runs as the user nobody, whose HOME is /tmp/home.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = ["README.md", "docs/getting-started.md", *sorted(
    os.path.join("docs/chapters", name) for name in os.listdir(os.path.join(ROOT, "docs/chapters")))]
ELLIPSIS = "..."
HEREDOC = re.compile(r"<<-?\s*'?(\w+)'?")
ROOTLESS = "<!-- transcript: rootless -->"
SENTINEL = "\x1e"  # between two commands' output; no program here prints it
NOBODY = 65534
TIMEOUT_S = 900

# What every session starts with: the sandbox of the module docstring.
PRELUDE = r"""
set -u
__status=0
exec 9<"$REPO"
mount -t tmpfs -o mode=1777 tmpfs /tmp
mkdir -p /tmp/dockyard /tmp/home /tmp/root /var/lib/dockyard
mount --bind /proc/self/fd/9 /tmp/dockyard && exec 9<&-
mount -t tmpfs tmpfs /var/lib/dockyard
chown nobody /tmp/home
ip link set lo up
cd /tmp/dockyard
export HOME=/tmp/root PATH="/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin" PYTHONUNBUFFERED=1
export DOCKYARD_CGROUP_PARENT=${DOCKYARD_CGROUP_PARENT:-transcripts-$$}  # the tests give each test its own
/usr/bin/python3 -m tools.busybox_rootfs /tmp/rootfs >/dev/null
mkdir /tmp/.bin && printf '#!/bin/sh\nexec env "$@"\n' > /tmp/.bin/sudo && chmod +x /tmp/.bin/sudo
export PATH="/tmp/.bin:$PATH"  # so `kill $!` of a `sudo ... &` reaches the program, as with sudo
shopt -s expand_aliases
"""


@dataclass
class Command:
    text: str          # what follows `$ `, continuation lines joined with newlines
    expected: list[str]
    line: int          # where the page shows it
    rootless: bool = False
    output: list[str] = field(default_factory=list)


def parse(page: str) -> list[Command]:
    """The commands of every ```console block of a page, in order."""
    commands: list[Command] = []
    lines = read(page).splitlines()
    inside, rootless, previous = False, False, ""
    for number, line in enumerate(lines, start=1):
        if not inside:
            if line.strip() == "```console":
                inside, rootless = True, previous == ROOTLESS
            elif line.strip():
                previous = line.strip()
            continue
        if line.strip() == "```":
            inside = False
        elif line.startswith("$ "):
            commands.append(Command(line[2:], [], number, rootless))
        elif commands and not commands[-1].expected and continues(commands[-1].text):
            commands[-1].text += "\n" + line
        elif commands:
            commands[-1].expected.append(line)
        else:
            raise ValueError(f"{page}:{number}: output before any command")
    return commands


def continues(text: str) -> bool:
    """Does a command go on on the next line: after a `\\`, or inside a here-document?"""
    if text.endswith("\\"):
        return True
    heredoc = HEREDOC.search(text.split("\n", 1)[0])
    return bool(heredoc) and text.split("\n")[-1] != heredoc.group(1)


def read(page: str) -> str:
    with open(os.path.join(ROOT, page)) as f:
        return f.read()


def script(commands: list[Command]) -> str:
    """The session: the prelude, then each command after a sentinel line of its own."""
    parts = [PRELUDE]
    for index, command in enumerate(commands):
        # Keep $? across the sentinel, for a `$ echo $?` of its own.
        parts.append(f"__status=$?; printf '\\n{SENTINEL}{index}{SENTINEL}\\n'; (exit $__status)\n")
        if command.rootless:
            # A heredoc keeps the command's own quoting; the user's shell reads it as its script.
            parts.append("setpriv --reuid=nobody --regid=nogroup --clear-groups "
                         "env HOME=/tmp/home USER=nobody bash <<'__TRANSCRIPT__'\n"
                         f"{command.text}\n__TRANSCRIPT__\n")
        else:
            parts.append(command.text + "\n")
    parts.append(f"printf '\\n{SENTINEL}end{SENTINEL}\\n'\n")
    return "".join(parts)


def run(commands: list[Command]) -> str:
    """Run a page's session in its sandbox; return everything it printed."""
    with tempfile.NamedTemporaryFile("w", suffix=".sh") as f:
        f.write(script(commands))
        f.flush()
        result = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "--pid", "--net", "--fork",
             "--kill-child", "--mount-proc", "bash", f.name],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env={**os.environ, "REPO": ROOT}, timeout=TIMEOUT_S)
    return result.stdout.decode(errors="replace")


def attach_output(commands: list[Command], printed: str) -> str:
    """Give each command the lines it printed; return what the prelude printed."""
    chunks = re.split(f"\n{SENTINEL}(\\d+|end){SENTINEL}\n", printed)
    prelude, pairs = chunks[0], zip(chunks[1::2], chunks[2::2])
    for key, text in pairs:
        if key != "end":
            commands[int(key)].output = [line.rstrip() for line in text.splitlines()]
    return prelude


def line_matches(expected: str, actual: str) -> bool:
    pattern = ".*".join(re.escape(part) for part in expected.rstrip().split(ELLIPSIS))
    return re.fullmatch(pattern, actual, re.DOTALL) is not None


def lines_match(expected: list[str], actual: list[str]) -> bool:
    """Does `actual` fit `expected`, where a line `...` stands for any number of lines?"""
    if not expected:
        return not actual
    if expected[0].strip() == ELLIPSIS:
        return any(lines_match(expected[1:], actual[skip:]) for skip in range(len(actual) + 1))
    return bool(actual) and line_matches(expected[0], actual[0]) and lines_match(expected[1:], actual[1:])


def mismatches(page: str, show: bool = False) -> list[str]:
    """Run a page; one report per command whose output differs from what the page shows."""
    commands = parse(page)
    if not commands:
        return []
    try:
        printed = run(commands)
    except subprocess.TimeoutExpired as err:  # the sandbox dies with unshare (--kill-child)
        return [f"{page}: the session took more than {TIMEOUT_S}s:\n{(err.output or b'')[-3000:].decode(errors='replace')}"]
    prelude = attach_output(commands, printed)
    if f"{SENTINEL}end{SENTINEL}" not in printed:
        return [f"{page}: the session ended early:\n{printed[-3000:]}"]
    if prelude.strip():
        return [f"{page}: the sandbox could not be set up:\n{prelude}"]
    reports = []
    for command in commands:
        if show:
            print(f"$ {command.text}\n" + "".join(f"{line}\n" for line in command.output), end="")
        if not lines_match(command.expected, command.output):
            reports.append(f"{page}:{command.line}: $ {command.text}\n"
                           + "--- the page shows\n" + "".join(f"  {line}\n" for line in command.expected)
                           + "--- it printed\n" + "".join(f"  {line}\n" for line in command.output))
    return reports


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pages", nargs="*", metavar="PAGE", help="Markdown pages (default: every page)")
    parser.add_argument("--show", action="store_true", help="print what each command printed (to write a transcript)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("error: the transcripts run containers as root\nhint: run with sudo", file=sys.stderr)
        return 2
    failed = 0
    for page in [os.path.relpath(os.path.abspath(p), ROOT) for p in args.pages] or PAGES:
        if not os.path.isfile(os.path.join(ROOT, page)):
            print(f"error: no page {page}\nhint: name a Markdown file of this repository", file=sys.stderr)
            return 2
        reports = mismatches(page, args.show)
        for report in reports:
            print(report)
        print(f"{page}: {'FAILED' if reports else 'ok'} ({len(parse(page))} commands)")
        failed += bool(reports)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
