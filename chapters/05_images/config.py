"""Limits and default paths, in one place."""

# Where images, containers and volumes live unless --root says otherwise.
DEFAULT_ROOT = "/var/lib/dockyard"

# The environment every container starts with (Docker sets the same PATH).
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_HOME = "/root"

# Signals the engine passes on to the container's process rather than obeying.
FORWARDED_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGWINCH")
