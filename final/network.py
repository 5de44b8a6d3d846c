# chapter: final
"""How a container meets a network: the modes of `run --network`.

    bridge      (the default as root) a veth pair into the root's `bridge` network
    NAME        a veth pair into a user network (`network create NAME`), names resolved
    none        (the default rootless) a namespace of its own with only lo
    host        the host's namespace, shared
    container:NAME   that running container's namespace, shared

This module checks the flags before anything is made and, around the
container's life, writes its /etc/hosts and resolv.conf and hands the
modes that use a bridge to bridge.py: veth pairs, addresses, the bridges
themselves, NAT and the port proxy. A `--network none` or `host` run never
imports that machinery (netlink, ipam, iptables, the proxy): the start of
a container is hot.

Names: see hosts.py.
"""

import os
import shutil
import sys

from . import container, hosts
from .errors import DockyardError
from .network_options import Options  # noqa: F401  (network.Options, as the record keeps it)


def configure(spec, args, image_config: dict | None) -> None:
    """Check run's network flags onto the spec; bridge is the default for root, none rootless."""
    spec.network = args.network or default_mode()
    check_usable(spec.network)
    if uses_bridge(spec.network) and spec.network != "bridge":  # a user network: it must be there before the record is
        from . import ipam
        ipam.find(spec.root, spec.network)
    if spec.network.startswith("container:"):
        spec.network = f"container:{shared_with(spec.root, spec.network.partition(':')[2], spec.userns)[0]}"
    ports = published_ports(args.publish, args.publish_all, image_config)
    for text in args.add_host:
        hosts.parse_add_host(text)
    for address in args.dns:
        hosts.check_address(address, "--dns")
    if args.network_alias and (spec.network == "bridge" or not uses_bridge(spec.network)):
        raise DockyardError("--network-alias needs a user network: names resolve only there, as in Docker",
                            hint="network create NAME, then run --network NAME --network-alias ...")
    if ports and not uses_bridge(spec.network):
        raise DockyardError(f"-p needs a bridge network, not --network {spec.network}",
                            hint="drop -p (with --network host the container's ports are the host's already)")
    spec.net = Options(aliases=args.network_alias, dns=args.dns, add_hosts=args.add_host, publish=ports)


def published_ports(publish: list[str], publish_all: bool, image_config: dict | None) -> list[dict]:
    """-p and -P, checked, as the record keeps them (proxy.Port's fields)."""
    if not publish and not publish_all:
        return []
    from . import proxy
    ports = [port for text in publish for port in proxy.parse(text)]
    if publish_all:
        ports += proxy.exposed(image_config or {})
    return proxy.to_records(ports)


def default_mode() -> str:
    """bridge, as Docker; none rootless, or where this host lacks what a bridge network needs (said on stderr)."""
    if os.geteuid() != 0:
        return "none"
    if missing := missing_for_bridge():
        # A warning, not an error: the user asked for no network in particular.
        print(f"warning: {missing}: the container gets --network none\n"
              f"hint: install it for the default bridge network, or pass --network none|host", file=sys.stderr)
        return "none"
    return "bridge"


def missing_for_bridge() -> str:
    """What this host lacks for bridge networks ("" if nothing). A kernel without bridge or veth
    support is only found out by asking it (attach says so then, with a hint)."""
    return "" if shutil.which("iptables-restore") else "iptables is not installed"


def shared_with(root: str, name: str, userns: bool) -> tuple[str, int]:
    """--network container:NAME: that container's id and PID 1, if it runs."""
    c = container.load(root, name)
    if c.status != "running":
        raise DockyardError(f"cannot join the network of container {name}: it is not running",
                            hint=f"start it first, or pick another --network")
    if userns:
        raise DockyardError("--network container:NAME cannot be combined with --userns",
                            hint="a user namespace has no rights over another container's network namespace")
    return c.id, c.state.pid


def share_namespace(spec, runtime_spec) -> None:
    """--network container:ID: the new container joins that one's network namespace (the runtime's setns)."""
    if spec.network.startswith("container:"):
        _, pid = shared_with(spec.root, spec.network.partition(":")[2], spec.userns)
        runtime_spec.join["network"] = f"/proc/{pid}/ns/net"


def uses_bridge(mode: str) -> bool:
    return mode not in ("none", "host") and not mode.startswith("container:")


def check_usable(mode: str) -> None:
    """Bridge networks need root, and iptables: say so before anything is made."""
    if uses_bridge(mode) and os.geteuid() != 0:
        raise DockyardError(f"--network {mode} needs root (a bridge, veth pairs and NAT are the host's)",
                            hint="run as root, or rootless with --network none (the default then) or host")
    if uses_bridge(mode) and (missing := missing_for_bridge()):
        raise DockyardError(f"--network {mode} needs NAT, but {missing}",
                            hint="install iptables (apt install iptables), or use --network none|host")


# --- joining and leaving ----------------------------------------------------------------

# --8<-- [start:attach]
def attach(spec, pid: int) -> None:
    """Give container `pid` its /etc files, and put it on its bridge network if it has one."""
    hosts.write_resolv_conf(spec)
    if spec.network.startswith("container:"):
        hosts.share_etc_files(spec.root, spec.id, spec.network.partition(":")[2])
    if uses_bridge(spec.network):
        from . import bridge
        bridge.attach(spec, pid)
    else:
        hosts.write_hosts(spec.root, spec.id, spec.hostname, spec.net.add_hosts, networks=[])
# --8<-- [end:attach]


def detach(spec) -> None:
    """Take the container off its bridge network and close its ports; safe to call twice."""
    if uses_bridge(spec.network):
        from . import bridge
        bridge.detach(spec)
