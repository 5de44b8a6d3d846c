# chapter: final
"""The `network` and `port` commands.

    network create [--subnet CIDR] [--gateway IP] NAME    a user network (its bridge comes with its first member)
    network ls | inspect NAME... | rm NAME... | prune
    network connect [--alias A] NETWORK CONTAINER        a running container gets one more interface
    network disconnect NETWORK CONTAINER
    port CONTAINER [PORT[/PROTO]]                        the host ports a container publishes

`bridge`, `host` and `none` always exist, as in Docker; only user networks
(any other name) resolve their members' names.
"""

import argparse
import json

from .errors import DockyardError

PSEUDO = {"host": "host", "none": "null"}  # name -> driver of the networks that have no record


def cmd_network(args: argparse.Namespace) -> int:
    import os
    from . import bridge
    if os.geteuid() != 0:
        raise DockyardError("network commands need root: bridges, addresses and NAT are the host's",
                            hint="run as root; rootless containers use --network none (the default) or host")
    bridge.reconcile(args.root)  # the next command after a crash puts things right
    return ACTIONS[args.action](args)


def network_create(args: argparse.Namespace) -> int:
    from . import bridge
    if args.driver != "bridge":
        raise DockyardError(f"unknown network driver {args.driver!r}", hint="only the bridge driver exists")
    print(bridge.create(args.root, args.name, args.subnet, args.gateway).id)
    return 0


def network_ls(args: argparse.Namespace) -> int:
    rows = [(n.id[:12], n.name, "bridge") for n in networks_with_default(args.root)]
    rows += [(pseudo_id(name)[:12], name, driver) for name, driver in PSEUDO.items()]
    if args.quiet:
        print("\n".join(row[0] for row in rows))
        return 0
    if args.format:
        from . import template
        shown = [{"ID": network_id, "Name": name, "Driver": driver, "Scope": "local", "IPv6": False, "Internal": False,
                  "Labels": ""} for network_id, name, driver in sorted(rows, key=lambda row: row[1])]
        return template.print_each(args.format, shown, {"ID": "NETWORK ID"})
    print(f"{'NETWORK ID':<14}{'NAME':<20}{'DRIVER':<10}SCOPE")
    for network_id, name, driver in sorted(rows, key=lambda row: row[1]):
        print(f"{network_id:<14}{name:<20}{driver:<10}local")
    return 0


def networks_with_default(root: str) -> list:
    """Every network record, `bridge` saved on first sight so that its id stays the same."""
    from . import ipam
    if not ipam.load(root, "bridge"):
        with ipam.locked():
            if not ipam.load(root, "bridge"):
                ipam.save(root, ipam.new(root, "bridge"))
    return ipam.all_networks(root)


def pseudo_id(name: str) -> str:
    import hashlib
    return hashlib.sha256(f"dockyard network {name}".encode()).hexdigest()


def network_inspect(args: argparse.Namespace) -> int:
    from . import ipam
    print(json.dumps([describe(ipam.find(args.root, name)) for name in need(args.names, "inspect")], indent=4))
    return 0


def describe(network) -> dict:
    """A network as `docker network inspect` shows it."""
    from . import ipam
    prefix = f"/{ipam.Subnet(network.subnet).prefixlen}" if network.subnet else ""
    return {"Name": network.name, "Id": network.id, "Created": network.created, "Scope": "local",
            "Driver": "bridge", "IPAM": {"Driver": "default",
                                         "Config": [{"Subnet": network.subnet, "Gateway": network.gateway}]},
            "Containers": {lease.container: {"Name": lease.name, "IPv4Address": f"{address}{prefix}",
                                             "Aliases": lease.aliases, "Interface": lease.interface}
                           for address, lease in network.members()},
            "Options": {"com.docker.network.bridge.name": network.bridge}}


def network_rm(args: argparse.Namespace) -> int:
    from . import ipam
    for name in need(args.names, "rm"):
        with ipam.locked():
            network = ipam.find(args.root, name)
            if network.name in ipam.PREDEFINED:
                raise DockyardError(f"{network.name} is a pre-defined network and cannot be removed",
                                    hint="remove user networks only (see network ls)")
            if network.leases:
                users = ", ".join(lease.name for _, lease in network.members())
                raise DockyardError(f"network {network.name} has active endpoints ({users})",
                                    hint=f"stop or disconnect them first: network disconnect {network.name} CONTAINER")
            ipam.delete(args.root, network.name)
        print(name)
    return 0


def network_prune(args: argparse.Namespace) -> int:
    print("Deleted Networks:")
    for name in prune_networks(args.root):
        print(name)
    return 0


def prune_networks(root: str) -> list[str]:
    """Remove every user network without containers; their names (network prune, system prune)."""
    from . import ipam
    deleted = []
    with ipam.locked():
        for network in ipam.all_networks(root):
            if network.name not in ipam.PREDEFINED and not network.leases:
                ipam.delete(root, network.name)
                deleted.append(network.name)
    return deleted


def network_connect(args: argparse.Namespace) -> int:
    from . import bridge, ipam, netlink
    spec, pid = running_spec(args.root, args.container, "connect")
    spec.net.aliases = args.alias
    with ipam.locked(), netlink.Netlink() as nl:
        target = ipam.find(args.root, args.network)
        if target.name in ipam.PREDEFINED and target.name != "bridge":
            raise DockyardError(f"cannot connect to network {target.name}", hint="connect to a bridge network")
        if any(lease.container == spec.id for _, lease in target.members()):
            raise DockyardError(f"container {spec.name} is already on network {target.name}",
                                hint=f"network disconnect {target.name} {spec.name} first")
        with netlink.Netlink.inside(pid) as inner:
            taken = inner.links()
        interface = next(f"eth{n}" for n in range(len(taken) + 1) if f"eth{n}" not in taken)
        bridge.join(spec, target, pid, nl, interface)
    return 0


def network_disconnect(args: argparse.Namespace) -> int:
    from . import bridge, ipam, netlink
    spec, _ = running_spec(args.root, args.container, "disconnect")
    with ipam.locked(), netlink.Netlink() as nl:
        target = ipam.find(args.root, args.network)
        addresses = [a for a, lease in target.members() if lease.container == spec.id]
        if not addresses:
            raise DockyardError(f"container {spec.name} is not connected to network {target.name}",
                                hint=f"see network inspect {target.name}")
        for address in addresses:
            bridge.leave(args.root, target, address, nl)
    return 0


def running_spec(root: str, text: str, action: str):
    """The run spec and PID 1 of a running container on a bridge network."""
    from . import containers, network
    container_id = containers.find(root, text)
    state = containers.read_state(root, container_id)
    spec = containers.load_spec(root, container_id)
    if state.status != "running":
        raise DockyardError(f"container {spec.name} is not running", hint=f"start it, then network {action} again")
    if not network.uses_bridge(spec.network):
        raise DockyardError(f"container {spec.name} uses --network {spec.network}",
                            hint="only containers on a bridge network can join or leave networks")
    return spec, state.pid


def need(names: list[str], action: str) -> list[str]:
    if not names:
        raise DockyardError(f"network {action} needs a network name", hint="see network ls")
    return names


ACTIONS = {"create": network_create, "ls": network_ls, "inspect": network_inspect, "rm": network_rm,
           "prune": network_prune, "connect": network_connect, "disconnect": network_disconnect}


def add_network_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", parser_class=type(p), required=True)
    create = sub.add_parser("create", help="make a user network")
    create.add_argument("--subnet", default="", metavar="CIDR", help="e.g. 10.123.0.0/24 (default: a free one)")
    create.add_argument("--gateway", default="", metavar="IP", help="the bridge's address (default: the first)")
    create.add_argument("-d", "--driver", default="bridge", help="bridge (the only one)")
    create.add_argument("name", metavar="NAME")
    ls = sub.add_parser("ls", help="list networks")
    ls.add_argument("-q", "--quiet", action="store_true", help="only the ids")
    ls.add_argument("--format", metavar="TEMPLATE", help="a Go template per network, e.g. '{{.Name}}'")
    for action in ("inspect", "rm"):
        sub.add_parser(action, help=f"{action} networks").add_argument("names", nargs="*", metavar="NETWORK")
    sub.add_parser("prune", help="remove every user network without containers")
    for action in ("connect", "disconnect"):
        q = sub.add_parser(action, help=f"{action} a running container")
        if action == "connect":
            q.add_argument("--alias", action="append", default=[], metavar="NAME", help="another name on it")
        q.add_argument("network", metavar="NETWORK")
        q.add_argument("container", metavar="CONTAINER")


# --- port ---------------------------------------------------------------------------------

def cmd_port(args: argparse.Namespace) -> int:
    from . import bridge, containers
    container_id = containers.find(args.root, args.container)
    lines = []
    for port in bridge.published(args.root, container_id):
        if args.port and args.port not in (str(port.container_port), f"{port.container_port}/{port.proto}"):
            continue
        ips = [port.host_ip] if port.host_ip else ["0.0.0.0", "::"]
        lines += [(f"{port.container_port}/{port.proto} -> " if not args.port else "")
                  + (f"[{ip}]" if ":" in ip else ip) + f":{port.host_port}" for ip in ips]
    if args.port and not lines:
        raise DockyardError(f"no public port {args.port!r} published for {args.container}",
                            hint=f"see: port {args.container}")
    print("".join(line + "\n" for line in lines), end="")
    return 0


def add_port_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("port", nargs="?", metavar="PORT[/PROTO]")


COMMANDS = {
    "network": ("Manage networks: create, ls, inspect, rm, prune, connect, disconnect",
                add_network_arguments, cmd_network),
    "port": ("List a container's published ports", add_port_arguments, cmd_port),
}
