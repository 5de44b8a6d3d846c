"""Errors that a user can cause, each with a hint that says what to do.

The hierarchy:

    DockyardError            a problem the user can fix; the CLI prints
    │                        "error: ..." and "hint: ..." and exits 125
    ├── UsageError           a bad flag or argument (exit 125, like Docker)
    └── CommandError         the container's command cannot run
        ├── NotFound         ... because it does not exist (exit 127)
        └── NotExecutable    ... because it is not executable (exit 126)

The exit codes are Docker's, so that scripts can tell who failed: 125 is
`run`'s own failure (and a command line that cannot be read, for every
command); another command that fails exits 1 (cli.exit_code).

Library code raises these at the edge of each mechanism, keeping `from err`,
so `--debug` can still show the kernel's own error underneath.
"""

import sys


class DockyardError(Exception):
    """A problem the user can fix; `hint` says how."""

    exit_code = 125

    def __init__(self, problem: str, hint: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.hint = hint

    def report(self) -> None:
        """The two lines the user reads, on stderr: what went wrong, and what to do about it."""
        print(f"error: {self.problem}\nhint: {self.hint}", file=sys.stderr)


class UsageError(DockyardError):
    """The command line asks for something that makes no sense."""


class CommandError(DockyardError):
    """The container's command could not be started."""


class NotFound(CommandError):
    exit_code = 127


class NotExecutable(CommandError):
    exit_code = 126
