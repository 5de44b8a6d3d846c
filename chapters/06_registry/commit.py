"""Chapter 5: `commit`, or how a container's diff becomes an image's layer.

Chapter 4 gave every container an overlay upper directory that holds exactly
what it changed; `diff` read it. `commit` writes that same directory as a
tar layer (tarwrite.py turns overlay's whiteouts into OCI's `.wh.` files),
stores it as a blob, and makes a new image: the container's image config
with one more diff id and one more history entry, and a manifest with one
more layer. The base image's layers are not copied: they are shared by
digest. With the vfs driver there is no upper directory, so the layer is
built from the `diff` list instead.

The new image's config is the container's, as Docker records it: the image's
config with what `run` changed, and then the `-c` changes on top:

    Cmd         the command after the image name; else the image's Cmd
                (with --entrypoint: only that command, the image's Cmd is dropped)
    Entrypoint  --entrypoint, or the image's
    Env         every -e, then each of the image's Env that no -e sets
    WorkingDir  -w, or the image's;   User  -u, or the image's
    the rest    (Volumes, Labels, ExposedPorts, StopSignal) the image's

What the engine adds at run time (HOSTNAME, PATH's default, TERM) is not
recorded. A container run from --rootfs has no image config: its image
starts from an empty one.
"""

import argparse
import os

from .errors import DockyardError


# --8<-- [start:commit_container]
def commit_container(root: str, container: str, name: str | None, changes: list[str], message: str):
    """Make an image from the container's base image (or rootfs) plus its changes."""
    from . import containers, imageconfig, imagespec, layers, reference
    from .store import Store
    if name:
        reference.parse(name)  # refuse a bad name before any work
    container_id = containers.find(root, container)
    spec = containers.load_spec(root, container_id)
    store = Store(root)
    config, base_layers = base_of(store, spec)
    if spec.container_config:
        config["config"] = dict(spec.container_config)
    imageconfig.apply_changes(config["config"], changes)
    stack = layers.Layers(spec.storage_driver, spec.lowers, containers.directory(root, container_id))
    # For root with --userns, what the container wrote is owned by the range on disk
    # (overlay's upper, or vfs's shifted copy): the layer records owners as seen inside.
    shift = layers.userns_shift(spec.userns)
    if spec.storage_driver == "overlay" and not shift:
        layer, diff_id = store.write_layer(stack.top(), upper=True)
    else:
        layer, diff_id = store.write_layer(stack.top(), changes=layers.changes(stack, spec.userns), shift=shift)
    imagespec.add_layer(config, diff_id, f"dockyard commit {container_id[:12]}", message)
    return store.create_image(config, base_layers + [layer], [name] if name else [])
# --8<-- [end:commit_container]


def base_of(store, spec) -> tuple[dict, list[dict]]:
    """The config and layers to build on: the container's image, or its rootfs as a first layer."""
    from . import imagespec
    if spec.image_id:
        try:
            image = store.resolve(spec.image_id)
        except DockyardError as err:
            raise DockyardError(f"the image of this container ({spec.image_id[7:19]}) is gone",
                                hint="commit needs the container's image: load or pull it again") from err
        return imagespec.new_config(image.config), list(image.layers)
    config = imagespec.new_config()
    layer, diff_id = store.write_layer(spec.lowers[-1] if spec.lowers else spec.rootfs)
    imagespec.add_layer(config, diff_id, "rootfs of the container")
    return config, [layer]


def add_commit_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--change", action="append", default=[], metavar="INSTR",
                   help="apply a Dockerfile instruction to the config: CMD, ENV, WORKDIR ...")
    p.add_argument("-m", "--message", default="", help="a comment for the image's history")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("name", nargs="?", metavar="NAME[:TAG]", help="the new image's name")


def cmd_commit(args: argparse.Namespace) -> int:
    image = commit_container(args.root, args.container, args.name, args.change, args.message)
    print(image.id)
    return 0


COMMANDS = {
    "commit": ("Make an image from a container's changes", add_commit_arguments, cmd_commit),
}
