# chapter: final
"""Networks on disk: their subnets, and which container holds which address.

    <root>/networks/<name>.json     one network: its id, bridge, subnet, gateway, leases
    /run/dockyard/network.lock      held while any engine changes any network

One record per network, replaced atomically (files.write_json) and only
under the lock, so two engines never hand out the same address. The lock
is host-wide, not per --root: bridges, subnets and firewall rules belong to
the host, and two roots must not both take 172.18.0.0/16.

A subnet is free when no address or route of the host overlaps it (some
machines already have 10.88.0.0/16 on another bridge) and no other network
of this root has it. Like Docker, the pool is 172.17-31.0.0/16, then
192.168.x.0/20.
"""

import ipaddress
import os
from dataclasses import asdict, dataclass, field
from typing import Iterator

from . import config, files
from .container import now
from .files import Lock
from .errors import DockyardError

Subnet = ipaddress.IPv4Network
POOL = ([Subnet(f"172.{n}.0.0/16") for n in range(17, 32)]
        + [Subnet(f"192.168.{n}.0/20") for n in range(0, 256, 16)])
PREDEFINED = ("bridge", "host", "none")


@dataclass
class Lease:
    """One container's place on a network."""
    container: str            # its id
    name: str                 # its name: what other members resolve
    aliases: list[str] = field(default_factory=list)
    veth: str = ""            # the host's end; the lease lives as long as this link
    interface: str = "eth0"   # the container's end
    hostname: str = ""
    add_hosts: list[str] = field(default_factory=list)   # its --add-host lines, for rewriting its /etc/hosts


@dataclass
class Network:
    name: str
    id: str
    bridge: str
    subnet: str = ""          # "" until the bridge first comes up
    gateway: str = ""
    fixed: bool = False       # --subnet given: never moved to another subnet
    created: str = ""
    leases: dict[str, Lease] = field(default_factory=dict)   # address -> lease

    def members(self) -> Iterator[tuple[str, Lease]]:
        return iter(sorted(self.leases.items()))


def locked() -> Lock:
    """The host-wide lock over every network change."""
    os.makedirs(config.RUN_DIR, mode=0o700, exist_ok=True)
    return Lock(os.path.join(config.RUN_DIR, "network.lock"))


# --- records ------------------------------------------------------------------------

def directory(root: str) -> str:
    return os.path.join(root, "networks")


def path_of(root: str, name: str) -> str:
    return os.path.join(directory(root), f"{name}.json")


def bridge_name(root: str, network_id: str, name: str) -> str:
    """dockyard0 for the default root's default network; dockyard + 7 hex digits otherwise (IFNAMSIZ is 16)."""
    if name == "bridge" and os.path.abspath(root) == config.DEFAULT_ROOT:
        return "dockyard0"
    return f"dockyard{network_id[:7]}"


def new(root: str, name: str, subnet: str = "", gateway: str = "") -> Network:
    network_id = os.urandom(32).hex()
    return Network(name=name, id=network_id, bridge=bridge_name(root, network_id, name), subnet=subnet,
                   gateway=gateway, fixed=bool(subnet), created=now())


def load(root: str, name: str) -> Network | None:
    try:
        data = files.read_json(path_of(root, name))
    except FileNotFoundError:
        return None
    data["leases"] = {address: Lease(**lease) for address, lease in data.get("leases", {}).items()}
    return Network(**data)


def save(root: str, network: Network) -> None:
    os.makedirs(directory(root), exist_ok=True)
    files.write_json(path_of(root, network.name), asdict(network))


def delete(root: str, name: str) -> None:
    os.unlink(path_of(root, name))


def all_networks(root: str) -> list[Network]:
    try:
        names = sorted(n[:-5] for n in os.listdir(directory(root)) if n.endswith(".json"))
    except FileNotFoundError:
        return []
    return [network for name in names if (network := load(root, name))]


def find(root: str, text: str) -> Network:
    """The network named `text` (or whose id begins with it); `bridge` is made on first use."""
    if network := load(root, text):
        return network
    if text == "bridge":
        return new(root, "bridge")
    matches = [n for n in all_networks(root) if text and n.id.startswith(text)]
    if len(matches) == 1:
        return matches[0]
    raise DockyardError(f"network {text} not found", hint="see 'network ls'; make one with 'network create NAME'")


# --- subnets ------------------------------------------------------------------------

def parse_subnet(text: str, gateway: str) -> tuple[str, str]:
    """Check --subnet and --gateway; return them, the gateway defaulting to the first host."""
    try:
        subnet = Subnet(text)
    except ValueError as err:
        raise DockyardError(f"invalid subnet {text!r}: {err}", hint="give an IPv4 network such as 10.123.0.0/24") from err
    if subnet.prefixlen > 29:
        raise DockyardError(f"subnet {text} is too small", hint="give at least a /29")
    try:
        gate = ipaddress.IPv4Address(gateway) if gateway else next(subnet.hosts())
    except ValueError as err:
        raise DockyardError(f"invalid gateway {gateway!r}", hint="give an IPv4 address inside the subnet") from err
    if gate not in subnet or gate in (subnet.network_address, subnet.broadcast_address):
        raise DockyardError(f"gateway {gate} is not a host address of {subnet}", hint="pick one inside the subnet")
    return str(subnet), str(gate)


def overlapping(subnet: Subnet, taken: list[Subnet]) -> Subnet | None:
    return next((other for other in taken if subnet.overlaps(other)), None)


def pick_subnet(taken: list[Subnet]) -> Subnet:
    """The first subnet of the pool that overlaps nothing in `taken`."""
    for subnet in POOL:
        if not overlapping(subnet, taken):
            return subnet
    raise DockyardError("no free subnet left in the pool (172.17-31.0.0/16, 192.168.0.0/16 in /20s)",
                        hint="remove unused networks (network prune), or give one with --subnet")


def subnets_of_others(root: str, name: str) -> list[Subnet]:
    return [Subnet(n.subnet) for n in all_networks(root) if n.name != name and n.subnet]


# --- addresses ------------------------------------------------------------------------

def allocate(network: Network) -> str:
    """The lowest address of the subnet that is neither the gateway nor leased."""
    used = {network.gateway, *network.leases}
    for host in Subnet(network.subnet).hosts():
        if str(host) not in used:
            return str(host)
    raise DockyardError(f"network {network.name} has no free address left in {network.subnet}",
                        hint="remove containers from it, or make a network with a larger --subnet")
