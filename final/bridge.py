# chapter: final
"""A container on a bridge network: veth, address, route, names, ports.

    host                                        container's network namespace
    ────                                        ─────────────────────────────
    dockyard0 (bridge) 172.17.0.1/16
      ├── veth1a2b3c4d ═══════ veth pair ═════  eth0 172.17.0.2/16, default via 172.17.0.1
      └── veth5e6f7a8b ═════ (another container)
    iptables: MASQUERADE 172.17.0.0/16 out, isolation (nat.py)
    proxy:    0.0.0.0:8080 -> 172.17.0.2:80 (proxy.py)

`attach` runs in PID 1's parent after clone and before the container goes
on (network.py calls it for the modes that use a bridge): under the
host-wide network lock it brings the bridge up (the first member makes it,
as Podman does, and the last one's `detach` takes it down, so an idle
network leaves nothing on the host), leases an address, makes the veth
pair with the container's end born inside the container's namespace as
eth0, and gives that end its address and default route.

Names: see hosts.py.

A lease lives exactly as long as its veth: when a container's namespace
dies, the kernel destroys the pair. So after a SIGKILL of the engine, the
next network change finds leases without a link and frees them
(`reconcile`), takes down bridges with no member left, and deletes firewall
rules whose bridge is gone.
"""

import ipaddress
import os

from . import container, files, hosts, ipam, netlink, proxy
from .errors import DockyardError
from .ipam import Lease, Network


# --- joining and leaving ----------------------------------------------------------------

def attach(spec, pid: int) -> None:
    """Put container `pid` on its bridge network and publish its ports; undo all of it if a step fails."""
    ports = [proxy.Port(**p) for p in spec.net.publish]
    listeners = proxy.bind_all(ports)  # a port in use fails here, before anything else is made
    try:
        with ipam.locked(), netlink.Netlink() as nl:
            reconcile_locked(spec.root, nl)
            network = ipam.find(spec.root, spec.network)
            address = join(spec, network, pid, nl, "eth0")
        if ports:
            record_proxy(spec, ports, proxy.start(listeners, address))
    except BaseException as err:
        proxy.close(listeners)
        detach(spec)
        if isinstance(err, OSError):  # the kernel refused a netlink request
            raise DockyardError(f"cannot connect the container to network {spec.network}: {err.strerror}",
                                hint="check that this kernel has bridge and veth support, or use --network none|host") from err
        raise


def join(spec, network: Network, pid: int, nl: netlink.Netlink, interface: str) -> str:
    """Lease an address on `network` for the container and wire it in; return the address."""
    bring_up(spec.root, network, nl)
    address = ipam.allocate(network)
    lease = Lease(container=spec.id, name=spec.name, aliases=list(spec.net.aliases),
                  veth=veth_name(spec.id, network.id), interface=interface, hostname=spec.hostname,
                  add_hosts=list(spec.net.add_hosts))
    try:
        wire(nl, network, lease, address, pid)
        network.leases[address] = lease
        ipam.save(spec.root, network)
    except BaseException:
        nl.delete_link(lease.veth)
        if not network.leases:
            take_down(network, nl)
        raise
    hosts.update_hosts_files(spec.root, network)
    return address


def wire(nl: netlink.Netlink, network: Network, lease: Lease, address: str, pid: int) -> None:
    """The veth pair, its container end named `lease.interface` with an address and a default route."""
    nl.create_veth(lease.veth, nl.link_index(network.bridge), lease.interface, pid)
    nl.set_up(nl.link_index(lease.veth))
    prefix = ipaddress.IPv4Network(network.subnet).prefixlen
    with netlink.Netlink.inside(pid) as inner:
        index = inner.link_index(lease.interface)
        inner.add_address(index, ipaddress.IPv4Interface(f"{address}/{prefix}"))
        inner.set_up(index)
        if lease.interface == "eth0":
            inner.add_default_route(ipaddress.IPv4Address(network.gateway))


def veth_name(container_id: str, network_id: str) -> str:
    """The host end's name: fixed by container and network, so a crash's leftover is found again."""
    return f"veth{container_id[:6]}{network_id[:5]}"  # 15 characters: IFNAMSIZ is 16 with the NUL


def detach(spec) -> None:
    """Take the container off every network and close its ports; safe to call twice."""
    stop_proxy(spec)
    if not os.path.exists(ipam.directory(spec.root)):
        return
    with ipam.locked(), netlink.Netlink() as nl:
        for network in ipam.all_networks(spec.root):
            for address in [a for a, lease in network.leases.items() if lease.container == spec.id]:
                leave(spec.root, network, address, nl)


def leave(root: str, network: Network, address: str, nl: netlink.Netlink) -> None:
    """Free one lease: its veth, the others' /etc/hosts, the bridge if it was the last."""
    nl.delete_link(network.leases.pop(address).veth)
    ipam.save(root, network)
    hosts.update_hosts_files(root, network)
    if not network.leases:
        take_down(network, nl)


# --- user networks ------------------------------------------------------------------------

def create(root: str, name: str, subnet: str = "", gateway: str = "") -> Network:
    """A user network's record, on `subnet` (checked) or a free one; its bridge comes with its first member."""
    if not container.NAME.match(name) or name in ipam.PREDEFINED:
        raise DockyardError(f"invalid network name {name!r}",
                            hint="use letters, digits, '_', '.' and '-'; bridge, host and none are taken")
    if gateway and not subnet:
        raise DockyardError("--gateway needs --subnet", hint="give both, e.g. --subnet 10.123.0.0/24 --gateway 10.123.0.1")
    subnet, gateway = ipam.parse_subnet(subnet, gateway) if subnet else ("", "")
    with ipam.locked(), netlink.Netlink() as nl:
        if ipam.load(root, name):
            raise DockyardError(f"network with name {name} already exists", hint="pick another name, or network rm it")
        taken = nl.addresses() + nl.routes() + ipam.subnets_of_others(root, name)
        if subnet and (clash := ipam.overlapping(ipam.Subnet(subnet), taken)):
            raise DockyardError(f"subnet {subnet} overlaps {clash}, which is already in use",
                                hint="pick a subnet that no network or interface of this host uses (see network inspect)")
        record = ipam.new(root, name, subnet, gateway)
        if not subnet:
            picked = ipam.pick_subnet(taken)
            record.subnet, record.gateway = str(picked), str(next(picked.hosts()))
        ipam.save(root, record)
    return record


# --- bridges ------------------------------------------------------------------------------

def bring_up(root: str, network: Network, nl: netlink.Netlink) -> None:
    """Make the network's bridge, on a subnet free on this host, with NAT; nothing if it is up."""
    if nl.link_index(network.bridge) is not None:
        return
    taken = nl.addresses() + nl.routes() + ipam.subnets_of_others(root, network.name)
    current = ipam.Subnet(network.subnet) if network.subnet else None
    if current and (clash := ipam.overlapping(current, taken)):
        if network.fixed:
            raise DockyardError(f"the subnet {current} of network {network.name} overlaps {clash}, in use on this host",
                                hint="remove that network or interface, or re-create this one with another --subnet")
        current = None
    if current is None:
        current = ipam.pick_subnet(taken)
        network.subnet, network.gateway = str(current), str(next(current.hosts()))
    index = nl.create_bridge(network.bridge)
    try:
        nl.add_address(index, ipaddress.IPv4Interface(f"{network.gateway}/{current.prefixlen}"))
        nl.set_up(index)
        from . import nat  # here, not at the top: a --network none run never needs iptables (subprocess)
        nat.add(network.bridge, network.subnet)
    except BaseException:
        take_down(network, nl)
        raise
    ipam.save(root, network)


def take_down(network: Network, nl: netlink.Netlink) -> None:
    """Remove the bridge and its rules (rules first: no rule may outlive its bridge)."""
    from . import nat
    try:
        nat.remove(network.bridge, network.subnet)
    finally:
        nl.delete_link(network.bridge)


def reconcile(root: str) -> None:
    """Free what a killed engine left: leases without a veth, idle bridges, orphaned rules."""
    if os.geteuid() != 0 or not os.path.isdir(ipam.directory(root)):
        return
    from . import nat
    with ipam.locked(), netlink.Netlink() as nl:
        reconcile_locked(root, nl)
        remove_orphan_bridges(nl)
        nat.remove_unless({name for name in nl.links() if name.startswith("dockyard")})


def remove_orphan_bridges(nl: netlink.Netlink) -> None:
    """Delete bridges of ours with no port, of any root: seen under the lock, such a bridge has no owner left.

    A bridge gets its first port in the same lock hold that makes it, and loses
    its last one in the hold that removes it; only a root deleted (rm -rf) while
    its bridge was up leaves one without.
    """
    for name in nl.links():
        try:
            idle = name.startswith("dockyard") and not os.listdir(f"/sys/class/net/{name}/brif")
        except FileNotFoundError:
            continue  # not a bridge, or gone meanwhile
        if idle:
            nl.delete_link(name)


def reconcile_locked(root: str, nl: netlink.Netlink) -> None:
    """Free leases whose veth is gone (its namespace died), and take down bridges left with no member."""
    links = nl.links()
    for network in ipam.all_networks(root):
        stale = [address for address, lease in network.leases.items() if lease.veth not in links]
        for address in stale:
            leave(root, network, address, nl)
        if not network.leases and network.bridge in links:
            take_down(network, nl)


def settings(root: str, container_id: str) -> dict:
    """The NetworkSettings block of `inspect CONTAINER`, as Docker lays it out."""
    block: dict = {"Ports": {}, "IPAddress": "", "Gateway": "", "IPPrefixLen": 0, "Networks": {}}
    for port in published(root, container_id):
        ips = [port.host_ip] if port.host_ip else ["0.0.0.0", "::"]
        block["Ports"].setdefault(f"{port.container_port}/{port.proto}", []).extend(
            {"HostIp": ip, "HostPort": str(port.host_port)} for ip in ips)
    for network in ipam.all_networks(root):
        for address, lease in network.members():
            if lease.container == container_id:
                prefix = ipaddress.IPv4Network(network.subnet).prefixlen
                block["Networks"][network.name] = {"NetworkID": network.id, "IPAddress": address,
                                                   "Gateway": network.gateway, "IPPrefixLen": prefix,
                                                   "Aliases": lease.aliases}
                if lease.interface == "eth0":
                    block.update(IPAddress=address, Gateway=network.gateway, IPPrefixLen=prefix)
    return block


# --- published ports ----------------------------------------------------------------------------

_proxies: dict[str, int] = {}  # container id -> pid of its proxy, in the process that started it


def record_proxy(spec, ports: list[proxy.Port], pid: int) -> None:
    """Remember the proxy, and record the ports as bound (for `port`)."""
    _proxies[spec.id] = pid
    files.write_json(hosts.container_file(spec.root, spec.id, "ports.json"), proxy.to_records(ports))


def stop_proxy(spec) -> None:
    if pid := _proxies.pop(spec.id, None):
        proxy.stop(pid)
    try:
        os.unlink(hosts.container_file(spec.root, spec.id, "ports.json"))
    except FileNotFoundError:
        pass


def published(root: str, container_id: str) -> list[proxy.Port]:
    """The ports a running container publishes now."""
    try:
        return [proxy.Port(**p) for p in files.read_json(hosts.container_file(root, container_id, "ports.json"))]
    except FileNotFoundError:
        return []
