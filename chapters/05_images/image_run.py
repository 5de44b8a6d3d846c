"""Chapter 5: `run IMAGE`: from a name to a stack of layers and a process spec.

    run busybox echo hi
        resolve busybox -> docker.io/library/busybox:latest -> manifest -> config
        unpack each layer once, into <root>/layers/<diff id>  (the chapter-4 lowers)
        argv    = Entrypoint + (echo hi, or the image's Cmd)
        env     = defaults, then the image's Env, then -e
        workdir = -w, or the image's WorkingDir
        user    = -u, or the image's User, looked up *inside* the container
        volumes = -v, plus an anonymous volume for each of the image's Volumes
                  (removed by --rm; a new volume starts with the image's files there)

The user is looked up after pivot_root, in the container's own /etc/passwd
and /etc/group (users.py), so a hostile image's symlinks resolve inside it,
never on the host.
"""

import argparse
import os

from . import imageconfig
from .errors import DockyardError, UsageError


def prepare(args: argparse.Namespace) -> dict | None:
    """Turn `run IMAGE [CMD...]` into the arguments `run --rootfs` takes; None for --rootfs."""
    if args.rootfs:
        return None
    if not args.command:
        raise UsageError("run needs an image (or --rootfs DIR)", hint="for example: run busybox echo hi")
    from .store import Store
    store = Store(args.root)
    name, *rest = args.command
    image = store.resolve(name)
    config = image.config.get("config") or {}
    lowers = list(reversed(store.unpack(image)))  # the top-most first, as chapter 4 stacks them
    own = imageconfig.container_config(config, args.entrypoint, rest, args.env, args.workdir or "", args.user)
    args.command = imageconfig.command_line(config, args.entrypoint, rest)
    args.env = list(config.get("Env") or []) + args.env
    args.workdir = args.workdir or config.get("WorkingDir") or "/"  # an explicit -w, even -w /, wins
    args.user = args.user or config.get("User", "")
    args.volume = args.volume + anonymous_volumes(config, args.volume, args.root)
    args.rootfs = lowers[0] if lowers else empty_layer(store)
    return {"name": name, "id": image.id, "lowers": lowers or [args.rootfs], "config": config,
            "container_config": own}


def anonymous_volumes(config: dict, given: list[str], root: str) -> list[str]:
    """`-v PATH` (an anonymous volume) for each of the image's Volumes that -v does not cover."""
    from . import volumes
    taken = {os.path.normpath(volumes.parse(text, root).destination) for text in given}
    return [path for path in sorted(config.get("Volumes") or {}) if os.path.normpath(path) not in taken]


def empty_layer(store) -> str:
    """A layer with nothing in it, for an image with no layers at all."""
    path = os.path.join(store.layers, "empty")
    os.makedirs(path, exist_ok=True)
    return path


def apply(spec, image: dict | None) -> None:
    """Record the image on the run spec: its layers, id, name, stop signal."""
    if image is None:
        return
    spec.lowers = image["lowers"]
    spec.image, spec.image_id = image["name"], image["id"]
    spec.stop_signal = spec.stop_signal or image["config"].get("StopSignal", "") or ""  # run's flag first
    spec.container_config = image["container_config"]  # what `commit` records (commit.py)
    # The root's checks (a /proc to mount over) look at the container's init layer,
    # which always has one: an image's top layer is only a diff.
    from . import containers
    spec.rootfs = os.path.join(containers.directory(spec.root, spec.id), "init")
