# chapter: final
"""The `cp` and `export` commands: a thin table (cp.py holds the rules, container_fs.py and
copy_stream.py the machinery, imported only when one of these commands runs).

    cp [-a] [-L] [-q] CONTAINER:SRC_PATH DEST_PATH|-     out of a container (`-`: a tar on stdout)
    cp [-a] [-L] [-q] SRC_PATH|- CONTAINER:DEST_PATH     into it (`-`: a tar from stdin)
    export [-o FILE] CONTAINER                           its whole filesystem as a tar
"""

import argparse
import sys

from .errors import UsageError


def cmd_cp(args: argparse.Namespace) -> int:
    from . import cp
    size = cp.copy(args.root, args.source, args.dest, args.archive, args.follow_link)
    if args.dest != "-" and not args.quiet and sys.stderr.isatty():  # as Docker's: on a terminal only
        print(f"Successfully copied {human_size(size)} to {args.dest}", file=sys.stderr)
    return 0


def human_size(size: float) -> str:
    """A size as Docker's CLI prints it: three significant digits and a decimal unit (2.05kB)."""
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000:
            return f"{size:.3g}{unit}"
        size /= 1000
    return f"{size:.3g}TB"


def add_cp_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--archive", action="store_true", help="keep the source's uid and gid")
    p.add_argument("-L", "--follow-link", action="store_true", help="follow a symlink named as SRC_PATH")
    p.add_argument("-q", "--quiet", action="store_true", help="do not say how much was copied (said on terminals only)")
    p.add_argument("source", metavar="SRC", help="CONTAINER:SRC_PATH, or a host path, or - (a tar on stdin)")
    p.add_argument("dest", metavar="DEST", help="CONTAINER:DEST_PATH, or a host path, or - (a tar on stdout)")


def cmd_export(args: argparse.Namespace) -> int:
    from . import cp
    if not args.output and sys.stdout.isatty():
        raise UsageError("refusing to write an archive to a terminal", hint="use -o FILE or redirect stdout")
    cp.export(args.root, args.container, args.output)
    return 0


def add_export_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    p.add_argument("container", metavar="CONTAINER")


COMMANDS = {
    "cp": ("Copy files/folders between a container and the local filesystem", add_cp_arguments, cmd_cp),
    "export": ("Export a container's filesystem as a tar archive", add_export_arguments, cmd_export),
}
