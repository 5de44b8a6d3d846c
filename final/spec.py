"""The runtime's input: one small description of a container, and nothing of the engine.

The engine knows names, records and the user's flags; the runtime knows
processes and the kernel. Between them sits this description, as runc's
libcontainer config sits between a bundle and the kernel (in chapter 5 an
OCI image config and an OCI runtime's config.json play those parts):

    engine (cli, records ...)  ── builds ──▶  RuntimeSpec  ──▶  runtime.run

Everything here is plain data: paths, strings, numbers. It holds no open
file and the runtime never changes it, so anyone can build, save or compare
one. Each chapter adds the fields its mechanism needs.
"""

from dataclasses import dataclass, field
from .profile import Profile  # ch final
from .limits import Limits  # ch 03


@dataclass
class Process:
    """The command to run inside, and how."""
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: str = "/"
    stdin: bool = False          # keep stdin attached (-i); otherwise it reads /dev/null
    init: bool = False           # a tiny init as PID 1 that runs `args` as its child  # ch 02
    user: str = ""               # name, uid, name:group ...: looked up in the container's /etc/passwd  # ch 05
    terminal: bool = False       # a pty as stdin, stdout and stderr  # ch final
    security: Profile = field(default_factory=Profile)   # what root inside may do (profile.py, security.py)  # ch final


# >>> chapter 02
@dataclass
class Mount:
    """One mount made on the container's root, resolved inside it, before pivot_root."""
    destination: str             # absolute, as the container sees it
    source: str = ""
    type: str = "bind"           # "bind", or a filesystem type: tmpfs, proc ...
    flags: int = 0               # MS_* flags besides MS_BIND and MS_RDONLY
    data: str = ""               # the filesystem's options, as mount(2) takes them
    read_only: bool = False


# The kinds of namespace, as clone(2) and /proc/PID/ns/ name them.
NAMESPACES = ("mount", "uts", "ipc", "pid", "network", "user")
# <<< chapter 02


@dataclass
class Root:
    """The container's "/": a directory (from chapter 4 on, maybe an overlay of layers mounted there)."""
    path: str
    readonly: bool = False       # --read-only: remount "/" read-only after the mounts are made  # ch final
    # >>> chapter 04
    lowers: list[str] = field(default_factory=list)   # overlay's read-only layers, the top-most first
    upper: str = ""                                   # its writable layer ("" with no lowers)
    work: str = ""                                    # overlay's scratch dir, beside upper
    # Lowers to show through the container's id maps: their files belong to host
    # ids that the maps do not cover (root's image layers, with a user namespace).
    idmapped: list[str] = field(default_factory=list)
    # <<< chapter 04


@dataclass
class RuntimeSpec:
    """Everything the runtime needs to run one container."""
    id: str                      # the engine's name for the container, unique on this machine
    process: Process
    root: Root
    debug: bool = False          # tracebacks from the child
    # >>> chapter 02
    hostname: str = ""
    namespaces: list[str] = field(default_factory=lambda: list(NAMESPACES))   # new ones, by kind
    join: dict[str, str] = field(default_factory=dict)   # kind -> /proc/PID/ns/KIND or a bind of one
    uid_map: str = ""            # "inside outside count" lines, written for a new user namespace
    gid_map: str = ""
    mounts: list[Mount] = field(default_factory=list)
    # <<< chapter 02
    resources: Limits = field(default_factory=Limits)  # ch 03
    exec_fifo: str = ""          # create, not run: PID 1 waits at this fifo until start  # ch final
