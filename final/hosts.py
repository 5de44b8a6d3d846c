# chapter: final
"""Names on a network: each member's /etc/hosts lists the others, kept current.

On a user network every member's /etc/hosts lists the others (name
and --network-alias), and the engine rewrites the files of all members
when one joins or leaves. Docker answers names with a DNS server inside
the engine; a file needs no server that must stay alive, and an address
change is one write. /etc/hosts is a bind mount of one inode, so it is
rewritten in place (a rename would leave the container on the old file),
in one pwrite(2) that never shrinks the file: a shorter text is padded with
blank lines, so a reader sees the old list or the new, never a truncation.

The files are the ones the runtime binds over the container's /etc
(<root>/containers/<id>/hosts and resolv.conf); this module only rewrites
them, always under the network lock (ipam.locked) when members change.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .errors import DockyardError

if TYPE_CHECKING:
    from .ipam import Network

LOCALHOST = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"


def parse_add_host(text: str) -> tuple[str, str]:
    """--add-host NAME:IP, checked."""
    name, sep, address = text.partition(":")
    if not sep or not name:
        raise DockyardError(f"invalid --add-host {text!r}", hint="write --add-host NAME:IP")
    return name, check_address(address.strip("[]"), "--add-host")


def check_address(text: str, flag: str) -> str:
    """An IPv4 or IPv6 address, in its usual spelling."""
    import ipaddress  # here: a run without --dns or --add-host never needs it
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise DockyardError(f"invalid address {text!r} in {flag}", hint="give an IPv4 or IPv6 address") from None


def container_file(root: str, container_id: str, name: str) -> str:
    return os.path.join(root, "containers", container_id, name)


def update_hosts_files(root: str, network: Network) -> None:
    """Rewrite the /etc/hosts of every member of `network` (each lists the others)."""
    from . import ipam
    networks = ipam.all_networks(root)
    for _, lease in network.members():
        write_hosts(root, lease.container, lease.hostname, lease.add_hosts, networks)


def write_hosts(root: str, container_id: str, hostname: str, add_hosts: list[str], networks: list[Network]) -> None:
    """The container's /etc/hosts: localhost, itself, --add-host, and its peers on the user `networks`."""
    own, peers = [], []
    for network in networks:
        for address, lease in network.members():
            if lease.container == container_id:
                own.append(f"{address}\t{' '.join(dict.fromkeys([hostname, lease.name, *lease.aliases]))}\n")
            elif network.name != "bridge" and any(m.container == container_id for _, m in network.members()):
                peers.append(f"{address}\t{' '.join(dict.fromkeys([lease.name, *lease.aliases]))}\n")
    own = own or [f"127.0.1.1\t{hostname}\n"]
    extra = [f"{address}\t{name}\n" for name, address in (parse_add_host(t) for t in add_hosts)]
    rewrite_in_place(container_file(root, container_id, "hosts"), LOCALHOST + "".join(own + extra + peers))


def rewrite_in_place(path: str, text: str) -> None:
    """Replace a bind-mounted file's content in one write, padding with blank lines rather than shrinking."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        data = text.encode()
        data += b"\n" * max(0, os.fstat(fd).st_size - len(data))
        os.pwrite(fd, data, 0)
    finally:
        os.close(fd)


def share_etc_files(root: str, container_id: str, other: str) -> None:
    """--network container:ID: the other container's resolv.conf, as Docker shares it."""
    with open(container_file(root, other, "resolv.conf")) as f:
        rewrite_in_place(container_file(root, container_id, "resolv.conf"), f.read())


def write_resolv_conf(spec) -> None:
    """--dns replaces the host's nameservers (its search and options lines stay)."""
    if not spec.net.dns:
        return
    path = container_file(spec.root, spec.id, "resolv.conf")
    with open(path) as f:
        kept = [line for line in f.read().splitlines() if not line.startswith("nameserver")]
    rewrite_in_place(path, "".join(f"nameserver {a}\n" for a in spec.net.dns) + "".join(f"{k}\n" for k in kept))
