# chapter: final
"""`system prune`, `system df` and `system info`: the engine's housekeeping, as Docker's.

`system prune` is the four prunes in one, in the order that frees the most:
the stopped containers first (they hold their images' layers and their
networks' leases), then the networks no container is on, then the images
nothing names (with -a: every image no container uses), and, with
--volumes, the anonymous volumes no container uses. `system df` says what
each kind takes and how much of it a prune would give back.
"""

import argparse
import os


def add_system_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("prune", "df", "info"))
    p.add_argument("-a", "--all", action="store_true", help="prune: every image no container uses, not only nameless ones")
    p.add_argument("-f", "--force", action="store_true", help="prune: do not ask")
    p.add_argument("--volumes", action="store_true", help="prune: the anonymous volumes no container uses too")


def cmd_system(args: argparse.Namespace) -> int:
    if args.action == "info":
        from .info import cmd_info
        return cmd_info(args)
    if args.action == "df":
        return disk_usage_table(args)
    if not args.force and not confirmed(args):
        return 0
    return prune_all(args)


def confirmed(args: argparse.Namespace) -> bool:
    """Docker's question before a system prune; only y goes on."""
    from .ps import confirmed as asked
    images = "all images without at least one container associated to them" if args.all else "all dangling images"
    volumes = "  - all anonymous volumes not used by at least one container\n" if args.volumes else ""
    return asked("WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least "
                 f"one container\n{volumes}  - {images}\n")


def prune_all(args: argparse.Namespace) -> int:
    from . import ps
    from .bridge import reconcile
    from .network_commands import prune_networks
    from .image_commands import human_size
    removed, reclaimed = ps.prune(args.root, {})
    reconcile(args.root)
    report("Deleted Containers", removed)
    report("Deleted Networks", prune_networks(args.root))
    if args.volumes:
        report("Deleted Volumes", prune_volumes(args.root))
    before = store_usage(args.root)
    report("Deleted Images", prune_images(args))
    reclaimed += before - store_usage(args.root)
    print(f"Total reclaimed space: {human_size(reclaimed)}")
    return 0


def store_usage(root: str) -> int:
    """Bytes that images take: their blobs, and their layers unpacked."""
    from .ps import disk_usage
    return disk_usage(os.path.join(root, "images")) + disk_usage(os.path.join(root, "layers"))


def report(title: str, names: list[str]) -> None:
    """One block of the summary, as Docker prints it; none for a kind with nothing removed."""
    if names:
        print(f"{title}:\n" + "".join(name + "\n" for name in names))


def prune_volumes(root: str) -> list[str]:
    from . import volumes
    deleted = []
    for name in volumes.names(root):
        if volumes.is_anonymous(root, name) and not volumes.users(root, name):
            volumes.remove(root, name)
            deleted.append(name)
    return deleted


def prune_images(args: argparse.Namespace) -> list[str]:
    """Nameless images, unreachable blobs and unused layers (image prune); with -a, first every image
    no container uses."""
    from .image_commands import containers_using, open_store, prune_store
    lines = []
    if args.all:
        store = open_store(args)
        for name, _, image in list(store.images()):
            if image is not None and not containers_using(args.root, image.id):
                lines += store.remove(name or image.id, True)
    return lines + prune_store(args)


def disk_usage_table(args: argparse.Namespace) -> int:
    """TYPE, TOTAL, ACTIVE, SIZE, RECLAIMABLE for images, containers and local volumes."""
    from . import container, volumes
    from .container_commands import print_table
    from .image_commands import containers_using, human_size, open_store
    from .ps import disk_usage
    images = [image for _, _, image in open_store(args).images() if image is not None]
    used = [image for image in images if containers_using(args.root, image.id)]
    every = container.all_containers(args.root)
    running = [c for c in every if c.status in ("running", "paused", "restarting")]
    sizes = {c.id: disk_usage(c.path("")) for c in every}
    names = volumes.names(args.root)
    in_use = [name for name in names if volumes.users(args.root, name)]
    volume_sizes = {name: disk_usage(volumes.volume_dir(args.root, name)) for name in names}

    def row(kind: str, total: list, active: list, size: int, reclaimable: int) -> tuple:
        share = f" ({reclaimable * 100 // size}%)" if size else ""
        return kind, str(len(total)), str(len(active)), human_size(size), human_size(reclaimable) + share
    image_size = sum(image.size for image in images)
    print_table(("TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"), [
        row("Images", images, used, image_size, image_size - sum(image.size for image in used)),
        row("Containers", every, running, sum(sizes.values()), sum(sizes[c.id] for c in every if c not in running)),
        row("Local Volumes", names, in_use, sum(volume_sizes.values()),
            sum(size for name, size in volume_sizes.items() if name not in in_use)),
    ])
    return 0


COMMANDS = {
    "system": ("Manage the engine: prune, df, info", add_system_arguments, cmd_system),
}
