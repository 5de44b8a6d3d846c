"""What `run` was asked for, and the RuntimeSpec the engine makes of it.

The CLI checks the flags and fills a Request, in the user's words. The
runtime needs none of those words: it needs a process and a root (spec.py).
This module turns the one into the other, writing on the way the few files
that the container gets from the engine (from chapter 2 on: its
/etc/hostname, hosts and resolv.conf):

    cli ── Request ──▶ runtime_spec() ── RuntimeSpec ──▶ runtime.run
"""

import os
from dataclasses import dataclass, field

from . import config
from .spec import Process, Root, RuntimeSpec
from . import namespaces
from .spec import Mount
from .limits import Limits
from . import layers, volumes


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
    hostname: str = ""
    network: str = "none"
    userns: bool = False
    init: bool = False
    limits: Limits = field(default_factory=Limits)
    name: str = ""
    remove: bool = False                                # --rm: no record once it exits
    storage_driver: str = "overlay"
    lowers: list[str] = field(default_factory=list)     # read-only layers, the top-most first
    volumes: list[str] = field(default_factory=list)    # -v SOURCE:DEST[:ro], checked
    image: str = ""                                     # as the user named it; "" for --rootfs
    image_id: str = ""
    user: str = ""                                      # -u, or the image's User
    stop_signal: str = ""
    container_config: dict = field(default_factory=dict)  # the image's config as run changed it


def runtime_spec(request: Request, directory: str) -> RuntimeSpec:
    """The runtime's view of the request; `directory` holds the files the engine writes for it."""
    process = Process(request.argv, dict(request.env), request.workdir, stdin=request.interactive)
    spec = RuntimeSpec(request.id, process, Root(request.rootfs), debug=request.debug)
    process.init, spec.hostname = request.init, request.hostname
    spec.namespaces = namespaces.kinds_for(request.network, request.userns)
    if request.userns:
        spec.uid_map, spec.gid_map = namespaces.id_maps()
    spec.mounts = write_etc_files(directory, request.hostname, request.network)
    spec.resources = request.limits
    spec.root = layers.root_of(layers.Layers(request.storage_driver, request.lowers, directory), request.userns)
    spec.mounts += volumes.binds(request.root, request.volumes)
    process.user = request.user
    return spec


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
