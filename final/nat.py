# chapter: final
"""NAT and isolation: the firewall rules a bridge network needs, through iptables.

A container's packets leave the bridge with a source address that only this
host knows (10.x, 172.x). MASQUERADE, in the nat table's POSTROUTING chain,
rewrites that source to the address of whichever interface the packet leaves
by, and conntrack rewrites the replies back. ip_forward lets the host route
between the bridge and its other interfaces at all.

    filter FORWARD   -i BR -o BR                      ACCEPT  members talk to each other
                     -i BR ! -o dockyard+             ACCEPT  out to the world, never to another network
                     -o BR  RELATED,ESTABLISHED       ACCEPT  replies come back in
                     -o BR                            DROP    nothing else gets in: other networks, outside
    nat POSTROUTING  -s SUBNET ! -o BR                MASQUERADE

Each rule matches its own bridge only, so the rules of different networks
never contradict one another, whatever order engines running side by side
insert them in; the one order that matters (the reply rule above DROP) is
kept by inserting a network's rules in one iptables-restore transaction.
Every rule carries a comment `dockyard:BR`: that is how the engine finds its
own rules again, to remove them with their network, or after a crash.

iptables is the one external program the engine runs, as Docker does: the
kernel's firewall API (nf_tables over netlink) is a format of its own.
"""

import re
import subprocess

from .errors import DockyardError

BRIDGE_WILDCARD = "dockyard+"  # iptables' "+": every interface whose name starts so
TAG = re.compile(r"--comment \"?dockyard:([A-Za-z0-9_.-]+)\"?")


def rules(bridge: str, subnet: str) -> dict[str, list[str]]:
    """The rules of one network, by table, in the order they must end up in."""
    tag = f"-m comment --comment dockyard:{bridge}"
    return {
        "filter": [f"FORWARD -i {bridge} -o {bridge} {tag} -j ACCEPT",
                   f"FORWARD -i {bridge} ! -o {BRIDGE_WILDCARD} {tag} -j ACCEPT",
                   f"FORWARD -o {bridge} -m conntrack --ctstate RELATED,ESTABLISHED {tag} -j ACCEPT",
                   f"FORWARD -o {bridge} {tag} -j DROP"],
        "nat": [f"POSTROUTING -s {subnet} ! -o {bridge} {tag} -j MASQUERADE"],
    }


def add(bridge: str, subnet: str) -> None:
    """Insert a network's rules at the top of their chains, and let the host forward."""
    lines = []
    for table, table_rules in rules(bridge, subnet).items():
        lines.append(f"*{table}")
        lines += [f"-I {rule.split()[0]} {position} {rule.split(' ', 1)[1]}"
                  for position, rule in enumerate(table_rules, start=1)]
        lines.append("COMMIT")
    restore(lines)
    enable_forwarding()


def remove(bridge: str, subnet: str) -> None:
    """Delete the rules of a network (none is fine): the ones `add` made, else whatever is tagged for it."""
    exact = [line for table, table_rules in rules(bridge, subnet).items()
             for line in (f"*{table}", *(f"-D {rule}" for rule in table_rules), "COMMIT")]
    try:
        restore(exact)  # one call, in the usual case
    except DockyardError:
        restore(delete_lines(lambda tagged: tagged == bridge))  # some are gone: list what is left


def remove_unless(alive: set[str]) -> list[str]:
    """Delete the rules of bridges not in `alive` (left by a crash); return those bridges."""
    gone = sorted({bridge for _, rule in tagged_rules() if (bridge := TAG.search(rule)[1]) not in alive})
    if gone:
        restore(delete_lines(lambda tagged: tagged in gone))
    return gone


def tagged_rules() -> list[tuple[str, str]]:
    """(table, rule as `iptables -S` prints it) for every rule the engine made."""
    found = []
    for table, chain in (("filter", "FORWARD"), ("nat", "POSTROUTING")):
        listing = iptables("-t", table, "-S", chain)
        found += [(table, line) for line in listing.splitlines() if TAG.search(line)]
    return found


def delete_lines(wanted) -> list[str]:
    """iptables-restore input that deletes the tagged rules whose bridge is `wanted`."""
    lines, found = [], tagged_rules()
    for table in ("filter", "nat"):
        doomed = [rule for t, rule in found if t == table and wanted(TAG.search(rule)[1])]
        if doomed:
            lines += [f"*{table}", *("-D" + rule[2:] for rule in doomed), "COMMIT"]
    return lines


def restore(lines: list[str]) -> None:
    """Apply rule changes as one transaction per table (iptables-restore --noflush)."""
    if lines:
        run(["iptables-restore", "--noflush", "-w"], "\n".join(lines) + "\n")


def iptables(*args: str) -> str:
    return run(["iptables", "-w", *args])


def run(argv: list[str], text: str | None = None) -> str:
    try:
        result = subprocess.run(argv, input=text, capture_output=True, text=True)
    except FileNotFoundError as err:
        raise DockyardError(f"cannot set up NAT: {argv[0]} is not installed",
                            hint="install iptables (apt install iptables), or use --network host|none") from err
    if result.returncode != 0:
        raise DockyardError(f"{argv[0]} failed: {result.stderr.strip() or result.returncode}",
                            hint="bridge networks need iptables with the nat table (run as root)")
    return result.stdout


def enable_forwarding() -> None:
    """Let the host route packets between interfaces (a host-wide switch, as Docker turns it on)."""
    with open("/proc/sys/net/ipv4/ip_forward", "w") as f:
        f.write("1\n")
