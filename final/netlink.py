# chapter: final
"""rtnetlink from the standard library: how `ip link` and `ip addr` talk to the kernel.

The kernel keeps interfaces, addresses and routes; a program changes them by
sending messages on an AF_NETLINK socket. Every message is a 16-byte header
followed by a fixed struct and a list of attributes:

    nlmsghdr   length u32 | type u16 (RTM_NEWLINK...) | flags u16 | seq u32 | port u32
    ifinfomsg  family u8 | pad | type u16 | index i32 | flags u32 | change u32
    rtattr     length u16 | type u16 (IFLA_IFNAME...) | value, padded to 4 bytes

Attributes nest: a veth's peer is an ifinfomsg with its own attributes,
inside IFLA_INFO_DATA, inside IFLA_LINKINFO. With NLM_F_ACK set, the kernel
answers every request with NLMSG_ERROR, whose first field is 0 or -errno;
a dump (NLM_F_DUMP) comes back as many messages ended by NLMSG_DONE.

A netlink socket acts in the network namespace it was created in, so
`Netlink.inside(pid)` joins a container's namespace (setns(2), this thread
only) just long enough to create one, then comes home.

New here:  AF_NETLINK, rtnetlink(7), struct packing, setns(2) for one socket
See also:  docs/beyond/networks.md (a message taken apart byte by byte)
"""

import errno
import ipaddress
import os
import socket
import struct

from . import libc

NETLINK_ROUTE = 0
# nlmsghdr types and flags (linux/netlink.h, linux/rtnetlink.h)
NLMSG_ERROR, NLMSG_DONE = 2, 3
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_GETADDR = 20, 22
RTM_NEWROUTE, RTM_GETROUTE = 24, 26
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x4, 0x300
NLM_F_EXCL, NLM_F_CREATE = 0x200, 0x400
# link attributes (linux/if_link.h)
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MASTER, IFLA_LINKINFO, IFLA_NET_NS_PID = 1, 3, 10, 18, 19
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 1, 2, 1
IFF_UP = 0x1
# address and route attributes (linux/if_addr.h, linux/rtnetlink.h)
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_TABLE = 1, 4, 5, 15
RT_TABLE_MAIN, RT_TABLE_LOCAL, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST = 254, 255, 3, 0, 1

HEADER = struct.Struct("=IHHII")        # struct nlmsghdr
IFINFO = struct.Struct("=BxHiII")       # struct ifinfomsg
IFADDR = struct.Struct("=BBBBI")        # struct ifaddrmsg
RTMSG = struct.Struct("=BBBBBBBBI")     # struct rtmsg
RTATTR = struct.Struct("=HH")           # struct rtattr


# --- packing ---------------------------------------------------------------------

def align(n: int) -> int:
    """Netlink pads every header and attribute to a multiple of 4 bytes."""
    return (n + 3) & ~3


def attr(kind: int, value: bytes | str | int) -> bytes:
    """One rtattr: length, type, value (a str gets its C terminator), padding."""
    if isinstance(value, str):
        value = value.encode() + b"\0"
    elif isinstance(value, int):
        value = struct.pack("=I", value)
    raw = RTATTR.pack(RTATTR.size + len(value), kind) + value
    return raw + b"\0" * (align(len(raw)) - len(raw))


def nested(kind: int, *attributes: bytes) -> bytes:
    """An attribute whose value is more attributes."""
    return attr(kind, b"".join(attributes))


def parse_attrs(data: bytes) -> dict[int, bytes]:
    """The attributes in `data`, by type (the last one wins, as a reader of dumps wants)."""
    found, offset = {}, 0
    while offset + RTATTR.size <= len(data):
        length, kind = RTATTR.unpack_from(data, offset)
        if length < RTATTR.size:
            break
        found[kind & 0x3FFF] = data[offset + RTATTR.size:offset + length]  # drop NLA_F_NESTED and friends
        offset += align(length)
    return found


def c_string(value: bytes) -> str:
    return value.split(b"\0", 1)[0].decode()


class NetlinkError(OSError):
    """The kernel refused a request: errno says why, as it would for a syscall."""


# --- the socket ----------------------------------------------------------------

class Netlink:
    """One rtnetlink socket: send a request, read the kernel's answer."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
        self.sock.bind((0, 0))  # port 0: the kernel picks ours
        self.seq = 0

    @classmethod
    def inside(cls, pid: int) -> "Netlink":
        """A socket that acts in the network namespace of process `pid`."""
        home = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        target = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            libc.setns(target, libc.CLONE_NEWNET)
            try:
                return cls()  # the socket stays in the namespace it was made in
            finally:
                libc.setns(home, libc.CLONE_NEWNET)
        finally:
            os.close(home)
            os.close(target)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "Netlink":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, kind: int, body: bytes, flags: int = 0) -> list[tuple[int, bytes]]:
        """Send one message and return the replies (type, payload); raise on an error ack."""
        self.seq += 1
        flags |= NLM_F_REQUEST | NLM_F_ACK
        self.sock.sendall(HEADER.pack(HEADER.size + len(body), kind, flags, self.seq, 0) + body)
        replies = []
        while True:
            data = self.sock.recv(65536)
            for kind_, payload in self.split(data):
                if kind_ == NLMSG_DONE:
                    return replies
                if kind_ == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", payload)[0]
                    if code:
                        raise NetlinkError(code, os.strerror(code))
                    return replies  # an ack: 0 means done, and nothing went wrong
                replies.append((kind_, payload))

    def split(self, data: bytes) -> list[tuple[int, bytes]]:
        """The messages packed in one datagram, for our current request only."""
        messages, offset = [], 0
        while offset + HEADER.size <= len(data):
            length, kind, _, seq, _ = HEADER.unpack_from(data, offset)
            if seq == self.seq:
                messages.append((kind, data[offset + HEADER.size:offset + length]))
            offset += align(length)
        return messages

    # --- links --------------------------------------------------------------------

    def link_index(self, name: str) -> int | None:
        """The index of interface `name`, or None if there is none."""
        try:
            replies = self.request(RTM_GETLINK, IFINFO.pack(0, 0, 0, 0, 0) + attr(IFLA_IFNAME, name))
        except NetlinkError as err:
            if err.errno == errno.ENODEV:
                return None
            raise
        return IFINFO.unpack_from(replies[0][1])[2]

    def links(self) -> dict[str, int]:
        """Every interface in this namespace: name -> index."""
        found = {}
        for _, payload in self.request(RTM_GETLINK, IFINFO.pack(0, 0, 0, 0, 0), NLM_F_DUMP):
            attributes = parse_attrs(payload[IFINFO.size:])
            found[c_string(attributes[IFLA_IFNAME])] = IFINFO.unpack_from(payload)[2]
        return found

    def create_bridge(self, name: str) -> int:
        """`ip link add NAME type bridge`; return its index."""
        self.request(RTM_NEWLINK, IFINFO.pack(0, 0, 0, 0, 0) + attr(IFLA_IFNAME, name)
                     + nested(IFLA_LINKINFO, attr(IFLA_INFO_KIND, "bridge")), NLM_F_CREATE | NLM_F_EXCL)
        return self.link_index(name)

    # --8<-- [start:veth]
    def create_veth(self, name: str, master: int | None, peer: str, peer_pid: int) -> None:
        """A veth pair: `name` here, enslaved to bridge `master`; `peer` in the netns of `peer_pid`."""
        peer_info = IFINFO.pack(0, 0, 0, 0, 0) + attr(IFLA_IFNAME, peer) + attr(IFLA_NET_NS_PID, peer_pid)
        linkinfo = nested(IFLA_LINKINFO, attr(IFLA_INFO_KIND, "veth"),
                          nested(IFLA_INFO_DATA, attr(VETH_INFO_PEER, peer_info)))
        enslave = attr(IFLA_MASTER, master) if master is not None else b""
        self.request(RTM_NEWLINK, IFINFO.pack(0, 0, 0, 0, 0) + attr(IFLA_IFNAME, name) + enslave + linkinfo,
                     NLM_F_CREATE | NLM_F_EXCL)
    # --8<-- [end:veth]

    def set_up(self, index: int) -> None:
        """`ip link set DEV up`: flags IFF_UP, and only that bit changed."""
        self.request(RTM_NEWLINK, IFINFO.pack(0, 0, index, IFF_UP, IFF_UP))

    def delete_link(self, name: str) -> bool:
        """`ip link del NAME` (a veth takes its peer along); False if it was gone already."""
        try:
            self.request(RTM_DELLINK, IFINFO.pack(0, 0, 0, 0, 0) + attr(IFLA_IFNAME, name))
            return True
        except NetlinkError as err:
            if err.errno == errno.ENODEV:
                return False
            raise

    # --- addresses and routes ---------------------------------------------------------

    def add_address(self, index: int, interface: ipaddress.IPv4Interface) -> None:
        """`ip addr add ADDRESS/PREFIX dev DEV`."""
        packed = interface.ip.packed
        self.request(RTM_NEWADDR, IFADDR.pack(socket.AF_INET, interface.network.prefixlen, 0, RT_SCOPE_UNIVERSE,
                                              index) + attr(IFA_LOCAL, packed) + attr(IFA_ADDRESS, packed),
                     NLM_F_CREATE | NLM_F_EXCL)

    def add_default_route(self, gateway: ipaddress.IPv4Address) -> None:
        """`ip route add default via GATEWAY`."""
        self.request(RTM_NEWROUTE, RTMSG.pack(socket.AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT,
                                              RT_SCOPE_UNIVERSE, RTN_UNICAST, 0) + attr(RTA_GATEWAY, gateway.packed),
                     NLM_F_CREATE | NLM_F_EXCL)

    def addresses(self) -> list[ipaddress.IPv4Network]:
        """The IPv4 networks of every address in this namespace (`ip -4 addr`)."""
        found = []
        for _, payload in self.request(RTM_GETADDR, IFADDR.pack(socket.AF_INET, 0, 0, 0, 0), NLM_F_DUMP):
            prefix = IFADDR.unpack_from(payload)[1]
            attributes = parse_attrs(payload[IFADDR.size:])
            address = attributes.get(IFA_LOCAL) or attributes.get(IFA_ADDRESS)
            if address:
                found.append(ipaddress.IPv4Interface((address, prefix)).network)
        return found

    def routes(self) -> list[ipaddress.IPv4Network]:
        """The IPv4 destinations routed here, less the default route and the local table."""
        found = []
        for _, payload in self.request(RTM_GETROUTE, RTMSG.pack(socket.AF_INET, 0, 0, 0, 0, 0, 0, 0, 0),
                                       NLM_F_DUMP):
            family, dst_len, _, _, table = RTMSG.unpack_from(payload)[:5]
            attributes = parse_attrs(payload[RTMSG.size:])
            table = struct.unpack("=I", attributes[RTA_TABLE])[0] if RTA_TABLE in attributes else table
            if dst_len and table != RT_TABLE_LOCAL and RTA_DST in attributes:
                found.append(ipaddress.IPv4Network((attributes[RTA_DST], dst_len), strict=False))
        return found
