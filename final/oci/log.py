# chapter: final
"""runc's --log and --log-format: errors as text or JSON lines.

containerd's shim passes `--log bundle/log.json --log-format json` and, when a
command fails, reads that file's last "error" line back to tell the user why.
So every error goes both to stderr (for a person) and to the log (for the shim).
"""

import json
import sys
import time

_log: dict[str, str | None] = {"path": None, "format": "text"}


def configure(path: str | None, fmt: str) -> None:
    _log["path"], _log["format"] = path, fmt


def error(problem: str, hint: str = "") -> None:
    """Report a failure: one `error:` line (and a hint) on stderr, one line in the log."""
    print(f"error: {problem}", file=sys.stderr)
    if hint:
        print(f"  hint: {hint}", file=sys.stderr)
    write("error", problem)


def info(message: str) -> None:
    """A step worth keeping in the log (ignored fields, for instance); not shown on stderr."""
    write("info", message)


def write(level: str, message: str) -> None:
    if not _log["path"]:
        return
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    if _log["format"] == "json":
        line = json.dumps({"level": level, "msg": message, "time": now})
    else:
        line = f'time="{now}" level={level} msg="{message}"'
    try:
        with open(_log["path"], "a") as f:
            f.write(line + "\n")
    except OSError:
        pass  # a log we cannot write must not hide the error itself
