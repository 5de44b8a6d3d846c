"""What `run` was asked for, and the RuntimeSpec the engine makes of it.

The CLI checks the flags and fills a Request, in the user's words. The
runtime needs none of those words: it needs a process and a root (spec.py).
This module turns the one into the other, writing on the way the few files
that the container gets from the engine (from chapter 2 on: its
/etc/hostname, hosts and resolv.conf):

    cli ── Request ──▶ runtime_spec() ── RuntimeSpec ──▶ runtime.run
"""

import os
import shutil
from dataclasses import dataclass, field

from . import config
from .spec import Process, Root, RuntimeSpec
from . import runtime


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


def runtime_spec(request: Request, directory: str) -> RuntimeSpec:
    """The runtime's view of the request; `directory` holds the files the engine writes for it."""
    process = Process(request.argv, dict(request.env), request.workdir, stdin=request.interactive)
    spec = RuntimeSpec(request.id, process, Root(request.rootfs), debug=request.debug)
    return spec


def run_once(request: Request) -> int:
    """Run the request's container, then remove the files it needed: no record stays."""
    directory = os.path.join(request.root, "containers", request.id)
    try:
        return runtime.run(runtime_spec(request, directory))
    finally:
        shutil.rmtree(directory, ignore_errors=True)  # its /etc files, from chapter 2 on
