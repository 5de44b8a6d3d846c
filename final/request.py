"""What `run` was asked for, and the RuntimeSpec the engine makes of it.

The CLI checks the flags and fills a Request, in the user's words. The
runtime needs none of those words: it needs a process and a root (spec.py).
This module turns the one into the other, writing on the way the few files
that the container gets from the engine (from chapter 2 on: its
/etc/hostname, hosts and resolv.conf):

    cli ── Request ──▶ runtime_spec() ── RuntimeSpec ──▶ runtime.run
"""

import os
# import shutil  # ch 01-03
from dataclasses import dataclass, field

from . import config
from .spec import Process, Root, RuntimeSpec
# from . import runtime  # ch 01-03
from . import namespaces  # ch 02
from .spec import Mount  # ch 02
from .limits import Limits  # ch 03
from . import layers, volumes  # ch 04
from .network_options import Options as NetworkOptions  # ch final
from .profile import Profile  # ch final


@dataclass
class Request:
    """Everything `run` was asked for, after the CLI has checked it."""
    rootfs: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    interactive: bool = False
    debug: bool = False
    root: str = config.DEFAULT_ROOT
    id: str = field(default_factory=lambda: os.urandom(32).hex())
    hostname: str = ""  # ch 02
    network: str = "none"  # ch 02
    userns: bool = False  # ch 02
    init: bool = False  # ch 02
    tty: bool = False  # ch final
    security: Profile = field(default_factory=Profile)  # ch final
    net: NetworkOptions = field(default_factory=NetworkOptions)  # -p, --dns, --add-host, --network-alias  # ch final
    restart: str = "no"  # --restart, which the monitor keeps (monitor.py)  # ch final
    log: dict = field(default_factory=lambda: {"driver": "json-file"})  # --log-driver, --log-opt  # ch final
    labels: dict[str, str] = field(default_factory=dict)  # --label, over the image's (ps.labels_of)  # ch final
    stop_timeout: int | None = None  # --stop-timeout: stop's wait before SIGKILL (None: 10 s)  # ch final
    limits: Limits = field(default_factory=Limits)  # ch 03
    name: str = ""  # ch 04
    remove: bool = False                                # --rm: no record once it exits  # ch 04
    storage_driver: str = "overlay"  # ch 04
    lowers: list[str] = field(default_factory=list)     # read-only layers, the top-most first  # ch 04
    volumes: list[str] = field(default_factory=list)    # -v SOURCE:DEST[:ro], checked  # ch 04
    image: str = ""                                     # as the user named it; "" for --rootfs  # ch 05
    image_id: str = ""  # ch 05
    user: str = ""                                      # -u, or the image's User  # ch 05
    stop_signal: str = ""  # ch 05
    container_config: dict = field(default_factory=dict)  # the image's config as run changed it  # ch 05


def runtime_spec(request: Request, directory: str) -> RuntimeSpec:
    """The runtime's view of the request; `directory` holds the files the engine writes for it."""
    process = Process(request.argv, dict(request.env), request.workdir, stdin=request.interactive)
    spec = RuntimeSpec(request.id, process, Root(request.rootfs), debug=request.debug)
    # >>> chapter 02
    process.init, spec.hostname = request.init, request.hostname
    spec.namespaces = namespaces.kinds_for(request.network, request.userns)
    if request.userns:
        spec.uid_map, spec.gid_map = namespaces.id_maps()
    spec.mounts = write_etc_files(directory, request.hostname, request.network)
    from .network import share_namespace  # ch final
    share_namespace(request, spec)  # --network container:NAME joins that one's  # ch final
    # <<< chapter 02
    spec.resources = request.limits  # ch 03
    spec.root = layers.root_of(layers.Layers(request.storage_driver, request.lowers, directory), request.userns)  # ch 04
    spec.mounts += volumes.binds(request.root, request.volumes)  # ch 04
    process.user = request.user  # ch 05
    process.terminal, process.security = request.tty, request.security  # ch final
    if request.tty:  # ch final
        process.env.setdefault("TERM", "xterm")  # ch final
    return spec


# >>> chapter 01-03
# def run_once(request: Request) -> int:
#     """Run the request's container, then remove the files it needed: no record stays."""
#     directory = os.path.join(request.root, "containers", request.id)
#     try:
#         return runtime.run(runtime_spec(request, directory))
#     finally:
#         shutil.rmtree(directory, ignore_errors=True)  # its /etc files, from chapter 2 on
# <<< chapter 01-03
# >>> chapter 02


def write_etc_files(directory: str, hostname: str, network: str) -> list[Mount]:
    """Write the container's /etc/hostname, hosts and resolv.conf; return the binds that show them."""
    os.makedirs(directory, exist_ok=True)
    files = {"/etc/hostname": f"{hostname}\n",
             "/etc/hosts": f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                           f"127.0.1.1\t{hostname}\n",
             "/etc/resolv.conf": host_resolv_conf(network)}
    binds = []
    for path, text in files.items():
        source = os.path.join(directory, os.path.basename(path))
        with open(source, "w") as f:
            f.write(text)
        binds.append(Mount(path, source))
    return binds


def host_resolv_conf(network: str) -> str:
    """The host's resolv.conf, less servers on its loopback that a new netns cannot reach."""
    try:
        with open("/etc/resolv.conf") as f:
            lines = f.read().splitlines()
    except OSError:
        lines = []
    if network != "host":
        lines = [line for line in lines if not line.startswith("nameserver 127.")]
    return "\n".join(lines) + "\n"
# <<< chapter 02
