"""The image chapter's commands: import, images, inspect, tag, rmi, history, save, load, image prune.

The CLI merges this table into its own; each handler imports the store only
when it runs.
"""

import argparse
import json
import os
import re
import sys
import time

from . import commit
from .errors import DockyardError, UsageError, each


def open_store(args: argparse.Namespace):
    from .store import Store
    return Store(args.root)


# --- import ---------------------------------------------------------------------

def add_import_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--change", action="append", default=[], metavar="INSTR",
                   help="apply a Dockerfile instruction to the config: CMD, ENV, WORKDIR ...")
    p.add_argument("-m", "--message", default="", help="a comment for the image's history")
    p.add_argument("source", metavar="TAR|DIR|-", help="a root filesystem: a tar file (gzip or not), a directory, or - for stdin")
    p.add_argument("name", nargs="?", metavar="NAME[:TAG]", help="the new image's name")


def cmd_import(args: argparse.Namespace) -> int:
    from . import imageconfig, imagespec, reference
    if args.name:
        reference.parse(args.name)  # refuse a bad name before any work
    store = open_store(args)
    config = imagespec.new_config()
    imageconfig.apply_changes(config["config"], args.change)
    layer, diff_id = import_layer(store, args.source)
    imagespec.add_layer(config, diff_id, f"import {os.path.basename(args.source)}", args.message)
    image = store.create_image(config, [layer], [args.name] if args.name else [])
    print(image.id)
    return 0


def import_layer(store, source: str) -> tuple[dict, str]:
    """Store a rootfs (directory, or tar unpacked safely first) as one reproducible layer."""
    from . import tar
    if os.path.isdir(source):
        return store.write_layer(source)
    temp = store.temp_path()
    os.mkdir(temp, 0o755)
    try:
        try:
            stream = sys.stdin.buffer if source == "-" else open(source, "rb")
        except OSError as err:
            raise DockyardError(f"cannot read {source}: {err.strerror}",
                                hint="give a tar file or a directory holding a root filesystem") from err
        with stream:
            tar.unpack(stream, temp)
        return store.write_layer(temp)
    finally:
        import shutil
        shutil.rmtree(temp, ignore_errors=True)


# --- images, inspect, history ------------------------------------------------------

def add_images_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true", help="only the image IDs")
    p.add_argument("repository", nargs="?", metavar="REPOSITORY[:TAG]", help="only this repository")


def cmd_images(args: argparse.Namespace) -> int:
    rows, store = [], open_store(args)
    for name, digest, image in store.images():
        repository, tag = split_name(name)
        if args.repository and args.repository not in (repository, name):
            continue
        missing = [digest] if image is None else store.missing_blobs(image)
        if missing:  # still listed, so that it can be seen and removed
            print(f"warning: image {name or digest[7:19]} is damaged: blob {missing[0]} is missing; "
                  f"remove it with rmi -f {name or digest[7:19]}", file=sys.stderr)
        shown_id = image.id[7:19] if image else digest[7:19]
        created = ago(image.config.get("created")) if image else ""
        rows.append((repository, tag, shown_id, created, "damaged" if missing else human_size(image.size)))
    if args.quiet:
        print("\n".join(dict.fromkeys(r[2] for r in rows)) if rows else "", end="\n" if rows else "")
        return 0
    print_table(("REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"), rows)
    return 0


def split_name(name: str | None) -> tuple[str, str]:
    """busybox:latest -> (busybox, latest); a nameless image is <none> <none>."""
    if not name:
        return "<none>", "<none>"
    repository, _, tag = name.rpartition(":")
    return repository, tag


def add_inspect_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="+", metavar="IMAGE")


def cmd_inspect(args: argparse.Namespace) -> int:
    from .store import ImageNotFound
    store, found = open_store(args), []

    def inspect_one(name: str) -> None:
        try:
            found.append(describe(store.resolve(name)))
        except ImageNotFound:
            found.append(describe_container(args.root, name))
    failed = each(args.names, inspect_one)  # as Docker: what was found is shown, and what was not, said
    print(json.dumps(found, indent=4))
    return failed


def describe_container(root: str, name: str) -> dict:
    """Docker's `container inspect` fields, from a container's record (chapter 4)."""
    from . import containers
    from .store import ImageNotFound
    try:
        container_id = containers.find(root, name)
    except DockyardError:
        raise DockyardError(f"no such object: {name}", hint=ImageNotFound(name).hint) from None
    directory = containers.directory(root, container_id)
    spec = containers.read_json(os.path.join(directory, "config.json"))
    state = containers.read_json(os.path.join(directory, "state.json"))
    limits = spec.get("limits") or {}
    return {
        "Id": container_id, "Created": state.get("created", ""), "Name": "/" + spec.get("name", ""),
        "Path": spec["argv"][0], "Args": spec["argv"][1:], "Image": spec.get("image_id") or spec["rootfs"],
        "Driver": spec.get("storage_driver", ""),
        "State": {"Status": state.get("status"), "Running": state.get("status") == "running",
                  "OOMKilled": state.get("oom_killed", False), "Pid": state.get("pid", 0),
                  "ExitCode": state.get("exit_code", 0), "StartedAt": state.get("started", ""),
                  "FinishedAt": state.get("finished", "")},
        "Config": {"Hostname": spec.get("hostname", ""), "User": spec.get("user", ""),
                   "Env": [f"{k}={v}" for k, v in spec.get("env", {}).items()], "Cmd": spec["argv"],
                   "Image": spec.get("image") or spec["rootfs"], "WorkingDir": spec.get("workdir", "/"),
                   "Tty": spec.get("tty", False), "OpenStdin": spec.get("interactive", False),
                   "StopSignal": spec.get("stop_signal", "")},
        "HostConfig": {"NetworkMode": spec.get("network", "none"), "AutoRemove": spec.get("remove", False),
                       "Init": spec.get("init", False), "Binds": spec.get("volumes", []),
                       "Memory": limits.get("memory") or 0, "MemorySwap": limits.get("memory_swap") or 0,
                       "NanoCpus": int((limits.get("cpus") or 0) * 1e9), "CpuShares": limits.get("cpu_shares") or 0,
                       "PidsLimit": limits.get("pids_limit")},
    }


def describe(image) -> dict:
    """Docker's `image inspect` fields for one image."""
    repository_digests = sorted({f"{split_name(n)[0]}@{image.digest}" for n in image.names})
    return {"Id": image.id, "RepoTags": image.names, "RepoDigests": repository_digests,
            "Created": image.config.get("created", ""), "Author": image.config.get("author", ""),
            "Architecture": image.config.get("architecture"), "Os": image.config.get("os"),
            "Size": image.size, "Config": image.config.get("config") or {},
            "RootFS": {"Type": "layers", "Layers": image.diff_ids},
            "Descriptor": {"mediaType": image.manifest.get("mediaType"), "digest": image.digest}}


def add_history_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-trunc", action="store_true", help="show whole commands")
    p.add_argument("image", metavar="IMAGE")


def cmd_history(args: argparse.Namespace) -> int:
    image = open_store(args).resolve(args.image)
    layers = iter(image.layers)
    rows = []
    for entry in image.config.get("history") or []:
        size = 0 if entry.get("empty_layer") else next(layers, {}).get("size", 0)
        created_by = entry.get("created_by", "")
        if not args.no_trunc and len(created_by) > 45:
            created_by = created_by[:44] + "…"
        rows.append(["<missing>", ago(entry.get("created")), created_by, human_size(size), entry.get("comment", "")])
    if rows:
        rows[-1][0] = image.id[7:19]
    print_table(("IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"), list(reversed(rows)))
    return 0


# --- tag, rmi, prune ----------------------------------------------------------------

def add_tag_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="SOURCE[:TAG]")
    p.add_argument("target", metavar="TARGET[:TAG]")


def cmd_tag(args: argparse.Namespace) -> int:
    store = open_store(args)
    store.tag(store.resolve(args.source), args.target)
    return 0


def add_rmi_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--force", action="store_true", help="remove even if it has several names or is in use")
    p.add_argument("images", nargs="+", metavar="IMAGE")


def cmd_rmi(args: argparse.Namespace) -> int:
    store = open_store(args)
    for name in args.images:
        image = store.resolve_damaged(name) if args.force else store.resolve(name)
        users = containers_using(args.root, image.id)
        if users and not args.force and not only_untags(image, name):
            raise DockyardError(f"image {name} is in use by container {users[0][:12]}",
                                hint="remove the container first (rm), or use rmi -f")
        for line in store.remove(name, args.force):
            print(line)
    return 0


def only_untags(image, name: str) -> bool:
    """True if `rmi name` takes away one of several names, never the image: Docker allows it for one in use."""
    from .store import familiar
    if re.fullmatch(r"(?:sha256:)?[0-9a-f]{4,64}", name):
        return False
    return len(image.names) > 1 and familiar(name) in image.names


def container_configs(root: str) -> list[tuple[str, dict]]:
    """(id, config.json) of every container (chapter 4's records)."""
    from . import containers
    found = []
    for container_id in containers.all_ids(root):
        try:
            found.append((container_id, containers.read_json(
                os.path.join(containers.directory(root, container_id), "config.json"))))
        except (OSError, ValueError):
            continue  # being removed
    return found


def containers_using(root: str, image_id: str) -> list[str]:
    """IDs of the containers made from `image_id`."""
    return [cid for cid, config in container_configs(root) if config.get("image_id") == image_id]


def add_image_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="image_command", metavar="COMMAND", parser_class=type(p))
    prune = sub.add_parser("prune", help="remove nameless images, unused blobs and layers, leftovers")
    prune.add_argument("-f", "--force", action="store_true", help="do not ask (we never do)")
    for name, (summary, add, _) in IMAGE_ALIASES.items():
        add(sub.add_parser(name, help=summary))


def cmd_image(args: argparse.Namespace) -> int:
    if args.image_command == "prune":
        for line in prune_store(args):
            print(line)
        return 0
    if args.image_command in IMAGE_ALIASES:
        return IMAGE_ALIASES[args.image_command][2](args)
    raise UsageError("image needs a command", hint="image prune, image ls, image inspect ...")


def prune_store(args: argparse.Namespace) -> list[str]:
    """Nameless images, unreachable blobs, unused layers, leftovers: removed, once no writer is at work."""
    store = open_store(args)
    held = store.exclude_writers(lambda: print("waiting for the pulls, builds and loads that are writing "
                                               "to the store to finish ...", file=sys.stderr, flush=True))
    try:
        return store.prune(layers_in_use(args.root))
    finally:
        held.release()


def layers_in_use(root: str) -> set[str]:
    """Diff ids of the unpacked layers that containers stand on."""
    layers = os.path.join(root, "layers")
    return {"sha256:" + os.path.basename(path) for _, config in container_configs(root)
            for path in config.get("lowers") or [] if os.path.dirname(path) == layers}


# --- save, load -----------------------------------------------------------------------

def add_save_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    p.add_argument("images", nargs="+", metavar="IMAGE")


def cmd_save(args: argparse.Namespace) -> int:
    from . import archive, reference
    store = open_store(args)
    images = []
    for name in args.images:
        image = store.resolve(name)
        by_name = not name.startswith("sha256:") and reference.parse(name).familiar in image.names
        images.append((reference.parse(name).familiar if by_name else None, image))
    if not args.output and sys.stdout.isatty():
        raise UsageError("refusing to write an archive to a terminal", hint="use -o FILE or redirect stdout")
    if not args.output:
        archive.save(store, images, sys.stdout.buffer)
        return 0
    if os.path.exists(args.output) and not os.path.isfile(args.output):
        # A device or a pipe (-o /dev/null): write into it; renaming over it would replace it.
        with open(args.output, "wb") as out:
            archive.save(store, images, out)
        return 0
    temp = args.output + ".partial"
    try:
        with open(temp, "wb") as out:
            archive.save(store, images, out)
        os.rename(temp, args.output)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)
    return 0


def add_load_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-i", "--input", metavar="FILE", help="read from FILE instead of stdin")
    p.add_argument("-q", "--quiet", action="store_true", help="say nothing")


def cmd_load(args: argparse.Namespace) -> int:
    from . import archive
    try:
        source = open(args.input, "rb") if args.input else sys.stdin.buffer
    except OSError as err:
        raise DockyardError(f"cannot read {args.input}: {err.strerror}", hint="check the file's path") from err
    with source:
        lines = archive.load(open_store(args), source)
    if not args.quiet:
        print("\n".join(lines))
    return 0


# --- output helpers ------------------------------------------------------------------

def print_table(header: tuple[str, ...], rows: list) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("   ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip())


def human_size(size: int) -> str:
    """Docker's sizes: decimal units, three significant digits (4.26MB)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.3g}{unit}" if unit != "B" else f"{size}B"
        size /= 1000
    return f"{size}B"


def ago(created: str | None) -> str:
    """'5 minutes ago' for an RFC 3339 time."""
    if not created:
        return "N/A"
    import calendar
    try:
        then = calendar.timegm(time.strptime(created[:19], "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return created
    seconds = max(0, int(time.time() - then))
    for unit, length in (("year", 31536000), ("month", 2592000), ("week", 604800), ("day", 86400),
                         ("hour", 3600), ("minute", 60)):
        if seconds >= length:
            count = seconds // length
            return f"{count} {unit}{'s' if count > 1 else ''} ago"
    return "Less than a minute ago" if seconds >= 1 else "Less than a second ago"


IMAGE_ALIASES = {
    "ls": ("List images", add_images_arguments, cmd_images),
    "inspect": ("Show images' or containers' details as JSON", add_inspect_arguments, cmd_inspect),
    "rm": ("Remove images", add_rmi_arguments, cmd_rmi),
    "history": ("Show an image's layers", add_history_arguments, cmd_history),
}

COMMANDS = {
    **commit.COMMANDS,
    "images": ("List images", add_images_arguments, cmd_images),
    "import": ("Make an image from a root filesystem (tar or directory)", add_import_arguments, cmd_import),
    "inspect": ("Show images' or containers' details as JSON", add_inspect_arguments, cmd_inspect),
    "tag": ("Give an image another name", add_tag_arguments, cmd_tag),
    "rmi": ("Remove images", add_rmi_arguments, cmd_rmi),
    "history": ("Show an image's layers", add_history_arguments, cmd_history),
    "save": ("Write images to a tar archive (OCI layout + docker manifest.json)", add_save_arguments, cmd_save),
    "load": ("Load images from a tar archive (ours, docker save's, or an OCI archive)",
             add_load_arguments, cmd_load),
    "image": ("Manage images: prune, ls, inspect, rm, history", add_image_arguments, cmd_image),
}
