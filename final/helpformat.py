# chapter: final
"""argparse's help formatter, told the terminal's width once.

argparse builds a HelpFormatter at every add_argument (to check the option's
metavar), and each one asks shutil for the terminal's size: a `run` parser
of ~80 options made ~45 of them and paid shutil's import (~2 ms of a start)
before the container's first step. This one finds the width once, as
shutil.get_terminal_size would ($COLUMNS, the terminal's, or 80), and hands
it to every formatter: `--help` looks the same.
"""

import argparse
import functools
import os
import sys


class HelpFormatter(argparse.HelpFormatter):
    """argparse's own, told the terminal's width."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=terminal_width() - 2)  # the margin argparse keeps


@functools.cache
def terminal_width() -> int:
    """Columns for --help: $COLUMNS, the terminal's, or 80."""
    try:
        columns = int(os.environ.get("COLUMNS") or os.get_terminal_size(sys.__stdout__.fileno()).columns)
    except (AttributeError, ValueError, OSError):  # no stdout, or not a terminal: help goes to a pipe
        columns = 0
    return columns if columns > 0 else 80
