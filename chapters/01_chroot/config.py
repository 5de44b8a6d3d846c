"""Limits and default paths, in one place."""

import os

VERSION = "0.1.0"

# Where images, containers and volumes live unless --root says otherwise.
DEFAULT_ROOT = "/var/lib/dockyard"


def default_root() -> str:
    """/var/lib/dockyard for root; a rootless user's own data directory otherwise."""
    if os.geteuid() == 0:
        return DEFAULT_ROOT
    data = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return os.path.join(data, "dockyard")

# The environment every container starts with (Docker sets the same PATH).
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_HOME = "/root"

# Signals the engine passes on to the container's process rather than obeying.
FORWARDED_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGWINCH")
