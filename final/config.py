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

# Root inside a `--userns` container run by root is this range of host ids   # ch 02
# (start, count), as with Docker's userns-remap and /etc/subuid.            # ch 02
USERNS_RANGE = (100000, 65536)                                              # ch 02
# >>> chapter 03

# Every container's cgroup is <hierarchy>/dockyard/<container id>, as Docker's
# cgroupfs driver uses <hierarchy>/docker/<id>. DOCKYARD_CGROUP_PARENT picks
# another parent: the test suite gives each test its own, so that tests run
# side by side never see each other's cgroups.
CGROUP_MOUNT = "/sys/fs/cgroup"
CGROUP_PARENT = os.path.basename(os.environ.get("DOCKYARD_CGROUP_PARENT", "dockyard")) or "dockyard"
# Lock files that say which engines are alive (see cgroups.py); /run is
# emptied at boot, like the cgroup tree itself.
RUN_DIR = "/run/dockyard"
# Docker's floor for --memory: below it a container cannot even start.
MIN_MEMORY = 6 * 1024 * 1024
# The CFS period that --cpus is a fraction of (microseconds), as in Docker.
CPU_PERIOD_US = 100_000
# --cpu-shares, as cgroup v1 takes it: default 1024, from 2 to 262144.
CPU_SHARES_RANGE = (2, 262_144)
# How long `stats` watches the CPU counter to compute CPU %.
STATS_INTERVAL_S = 1.0
# <<< chapter 03
# How long pause and unpause wait for the freezer to stop (or wake) every process.  # ch final
FREEZE_TIMEOUT_S = 10.0                                                              # ch final
# >>> chapter 06

# Registry credentials (`login`), a Docker-style config.json in this directory;
# $DOCKYARD_CONFIG overrides it, as $DOCKER_CONFIG does for Docker.
CLIENT_CONFIG_DIR = "~/.dockyard"
# Where `registry serve` keeps blobs unless --storage says otherwise (under --root).
REGISTRY_STORAGE = "registry"
# <<< chapter 06
