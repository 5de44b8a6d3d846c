# chapter: final
"""Docker's management commands: `container rm X` is `rm X`, `image pull N` is `pull N`.

Docker grew a second spelling of its commands, grouped by what they act on,
and scripts use both. Rather than a second parser for each, the command line
is rewritten before it is parsed: `container` or `image` followed by one of
the commands below loses its first word. (`container ls|prune` and `image
ls|rm|inspect|history|prune` are commands of their own, in ps.py and
image_commands.py, and stay as they are.)
"""

GROUPED = {"container": ("attach", "commit", "cp", "create", "diff", "exec", "export", "inspect", "kill", "logs",
                         "pause", "port", "rename", "restart", "rm", "run", "start", "stats", "stop", "top", "unpause",
                         "wait"),
           "image": ("build", "import", "load", "pull", "push", "save", "tag")}


def ungrouped(argv: list[str], word: str | None) -> list[str]:
    """argv, whose command is `word`, with `container WORD` or `image WORD` made the plain command WORD."""
    if word not in GROUPED:
        return argv
    at = argv.index(word)
    if argv[at + 1:at + 2] and argv[at + 1] in GROUPED[word]:
        return argv[:at] + argv[at + 1:]
    return argv
