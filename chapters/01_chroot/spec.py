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


@dataclass
class Process:
    """The command to run inside, and how."""
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: str = "/"
    stdin: bool = False          # keep stdin attached (-i); otherwise it reads /dev/null


@dataclass
class Root:
    """The container's "/": a directory (from chapter 4 on, maybe an overlay of layers mounted there)."""
    path: str


@dataclass
class RuntimeSpec:
    """Everything the runtime needs to run one container."""
    id: str                      # the engine's name for the container, unique on this machine
    process: Process
    root: Root
    debug: bool = False          # tracebacks from the child
