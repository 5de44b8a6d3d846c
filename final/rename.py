# chapter: final
"""`rename OLD NEW`: give a container another name, running or not.

A name is a symbolic link, `<root>/names/NAME -> ID` (containers.py): making
the link is how a name is taken, atomically, so two engines never give one
name to two containers. A rename is therefore three steps, in an order that
a crash between any two of them leaves harmless:

    1. take NEW: symlink(ID, names/NEW)     (fails if NEW is anyone's)
    2. the record says NEW: config.json     (replaced atomically)
    3. give OLD back: unlink names/OLD

After a crash between 1 and 3 both names lead to the container until it is
removed; `rm` then drops the one its record names, and the other is a link
to nothing, which the next container to want that name takes over
(containers.reserve_name).

Other containers find this one by name on a user network, through their
/etc/hosts: its leases carry the name, so those change too, and every member's
hosts file is written again, as Docker's embedded DNS answers to the new name.
"""

import argparse
import os

from . import container, events, files
from .errors import UsageError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("new_name", metavar="NEW_NAME")


def cmd_rename(args: argparse.Namespace) -> int:
    from .containers import reserve_name  # here: the CLI imports this table to look for any command
    c = container.load(args.root, args.container)
    old, new = c.config.get("name", ""), args.new_name.lstrip("/")  # Docker accepts /NAME too
    if new == old:
        raise UsageError(f"the container is already named {old!r}", hint="give rename a name it does not have yet")
    reserve_name(args.root, new, c.id)  # refuses a name that is invalid or taken
    try:
        files.write_json(c.path("config.json"), {**c.config, "name": new})
    except BaseException:
        os.unlink(os.path.join(args.root, "names", new))
        raise
    old_link = os.path.join(args.root, "names", old)
    if old and os.path.islink(old_link) and os.readlink(old_link) == c.id:
        os.unlink(old_link)
    rename_leases(args.root, c.id, new)
    events.record(args.root, "rename", c.id, new, c.config.get("image") or c.config.get("rootfs", ""),
                  oldName="/" + old)
    return 0


def rename_leases(root: str, container_id: str, name: str) -> None:
    """The container's place on each network carries its name: what the other members' /etc/hosts list."""
    from . import hosts, ipam
    if not os.path.isdir(ipam.directory(root)):
        return
    with ipam.locked():
        for network in ipam.all_networks(root):
            leases = [lease for _, lease in network.members() if lease.container == container_id]
            for lease in leases:
                lease.name = name
            if leases:
                ipam.save(root, network)
                hosts.update_hosts_files(root, network)


COMMANDS = {
    "rename": ("Rename a container", add_arguments, cmd_rename),
}
