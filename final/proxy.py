# chapter: final
"""-p HOST:CONTAINER: a userspace proxy from a host port to the container's.

    client ──▶ 127.0.0.1:8080 ─┐  proxy process (child of the container's       ┌─▶ 172.17.0.2:80
    client ──▶ [::1]:8080    ──┴─ monitor or engine): accept, connect, copy ─────┘   inside the container

The engine binds the host's ports itself, before the container starts, so a
port that is taken fails the run at once (exit 125) and nothing is half-made.
A forked child then serves them: each TCP connection gets a connection to the
container and two threads that copy bytes until each side's end-of-file;
each UDP client gets a socket of its own toward the container, so that
replies find their way back. The child dies with its parent (PDEATHSIG), so
a killed engine takes its ports along, and the kernel closes the listening
sockets when their last holder is gone.

Docker does the same (docker-proxy) besides DNAT rules; a proxy alone also
serves 127.0.0.1 and ::1, which DNAT in PREROUTING never sees.
"""

import errno
import os
import re
import signal
import socket
import threading
import time
from dataclasses import asdict, dataclass

from . import libc
from .errors import DockyardError, UsageError

SPEC = re.compile(r"^(?:(?P<ip>\[[0-9a-fA-F:.]+\]|\d+\.\d+\.\d+\.\d+|):)?(?:(?P<host>\d*(?:-\d+)?):)?"
                  r"(?P<ctr>\d+(?:-\d+)?)(?:/(?P<proto>tcp|udp))?$")


@dataclass
class Port:
    """One published port: host_port 0 until bound."""
    container_port: int
    host_port: int = 0
    host_ip: str = ""           # "" is every address, IPv4 and IPv6, as Docker
    proto: str = "tcp"
    host_last: int = 0          # -p 8000-8010:80: the first free of host_port..host_last

    def describe(self) -> str:
        """As `docker port` prints it: 80/tcp -> 0.0.0.0:8080."""
        ip = self.host_ip or "0.0.0.0"
        return f"{self.container_port}/{self.proto} -> {f'[{ip}]' if ':' in ip else ip}:{self.host_port}"


# --- parsing -p and -P ----------------------------------------------------------------

def port_range(text: str, flag: str) -> list[int]:
    first, _, last = text.partition("-")
    low, high = int(first), int(last or first)
    if not 0 < low <= high <= 65535:
        raise UsageError(f"invalid port range {text!r} in {flag}", hint="ports go from 1 to 65535, low-high")
    return list(range(low, high + 1))


def parse(text: str) -> list[Port]:
    """-p [IP:][HOST:]CONTAINER[/tcp|udp], each side a port or a range low-high."""
    match = SPEC.match(text)
    if not match:
        raise UsageError(f"invalid -p {text!r}", hint="write -p [IP:]HOST:CONTAINER[/tcp|udp], e.g. -p 8080:80")
    ip = (match["ip"] or "").strip("[]")
    if ip:
        try:
            socket.inet_pton(socket.AF_INET6 if ":" in ip else socket.AF_INET, ip)
        except OSError:
            raise UsageError(f"invalid address {ip!r} in -p {text}", hint="give an IPv4 or IPv6 address") from None
    inside = port_range(match["ctr"], f"-p {text}")
    outside = port_range(match["host"], f"-p {text}") if match["host"] else [0] * len(inside)
    proto = match["proto"] or "tcp"
    if len(inside) == 1 < len(outside):  # one container port, any free one of the host's range
        return [Port(inside[0], outside[0], ip, proto, host_last=outside[-1])]
    if len(outside) != len(inside):
        raise UsageError(f"-p {text}: the host and container ranges differ in size",
                         hint="give ranges of the same length, e.g. -p 8000-8001:80-81")
    return [Port(c, h, ip, proto) for h, c in zip(outside, inside)]


def exposed(config: dict) -> list[Port]:
    """-P: each of the image's ExposedPorts ("80/tcp") on a free host port."""
    ports = []
    for key in sorted(config.get("ExposedPorts") or {}):
        number, _, proto = key.partition("/")
        ports += parse(f"{number}/{proto or 'tcp'}")
    return ports


# --- binding the host's side ------------------------------------------------------------

Listener = tuple[socket.socket, Port]  # a bound socket, and the port it publishes


def bind_all(ports: list[Port]) -> list[Listener]:
    """Bind every published port now; on any failure close what was bound and raise."""
    bound: list[Listener] = []
    try:
        for port in ports:
            bound += [(s, port) for s in bind(port)]
    except BaseException:
        close(bound)
        raise
    return bound


def close(listeners: list[Listener]) -> None:
    for s, _ in listeners:
        s.close()


def bind(port: Port) -> list[socket.socket]:
    """Bind one published port, trying each port of a range (or, for none given, a few free ones)."""
    candidates = range(port.host_port, (port.host_last or port.host_port) + 1) if port.host_port else [0] * 10
    for number in candidates:
        try:
            return bind_at(port, number)
        except OSError as err:
            if err.errno != errno.EADDRINUSE:
                raise DockyardError(f"cannot publish {port.describe()}: {err.strerror}",
                                    hint="check the address in -p: it must be one of this host's") from err
    wanted = f"{port.host_port}-{port.host_last}" if port.host_last else str(port.host_port or "")
    raise DockyardError(f"cannot publish {port.proto} port {wanted}: it is already in use",
                        hint="pick another host port (-p OTHER:CONTAINER), or -p CONTAINER for a free one")


def bind_at(port: Port, number: int) -> list[socket.socket]:
    """The sockets for `number` (0: a free one): IPv4 and IPv6 (v6only) for "every address", else the one given."""
    kind = socket.SOCK_STREAM if port.proto == "tcp" else socket.SOCK_DGRAM
    sockets: list[socket.socket] = []
    try:
        for address in [port.host_ip] if port.host_ip else ["0.0.0.0", "::"]:
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            sockets.append(s := socket.socket(family, kind | socket.SOCK_CLOEXEC))
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if kind == socket.SOCK_STREAM:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is not "in use"
            s.bind((address, number))
            number = s.getsockname()[1]  # 0 became a free port: IPv6 takes the same one
            if kind == socket.SOCK_STREAM:
                s.listen(128)
    except OSError:
        for s in sockets:
            s.close()
        raise
    port.host_port, port.host_last = number, 0
    return sockets


# --- the proxy process ------------------------------------------------------------------

def start(listeners: list[Listener], target: str) -> int:
    """Fork the process that serves `listeners` toward the container at `target`; return its pid."""
    pid = os.fork()
    if pid == 0:
        try:
            become_proxy([s for s, _ in listeners])
            serve(listeners, target)
        finally:
            os._exit(0)
    close(listeners)  # the proxy holds them now: when it dies, the ports close
    return pid


def become_proxy(listeners: list[socket.socket]) -> None:
    """Die with the parent, obey signals again, and keep no fd but our sockets."""
    libc.prctl(libc.PR_SET_PDEATHSIG, signal.SIGKILL)
    for sig in range(1, signal.NSIG):
        try:
            signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError):
            pass
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    keep = {s.fileno() for s in listeners}
    for fd in map(int, os.listdir("/proc/self/fd")):
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass  # the directory's own fd, closed already
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)  # the terminal belongs to the container, not to us


def serve(listeners: list[Listener], target: str) -> None:
    """One thread per listening socket; this thread waits for the parent's SIGKILL."""
    for s, port in listeners:
        loop = accept_loop if port.proto == "tcp" else datagram_loop
        threading.Thread(target=loop, args=(s, (target, port.container_port)), daemon=True).start()
    threading.Event().wait()


def accept_loop(listener: socket.socket, destination: tuple[str, int]) -> None:
    """Accept for as long as the proxy lives; one thread per connection."""
    while True:
        try:
            client, _ = listener.accept()
        except OSError:  # out of fds, or a client gone before accept: the port must stay open
            time.sleep(0.1)
            continue
        threading.Thread(target=connect_pair, args=(client, destination), daemon=True).start()


def connect_pair(client: socket.socket, destination: tuple[str, int]) -> None:
    """Connect to the container and copy both ways; a refused connection closes the client's."""
    try:
        upstream = socket.create_connection(destination)
    except OSError:
        client.close()
        return
    for s in (client, upstream):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # the proxy must not add Nagle's delay
    back = threading.Thread(target=copy, args=(upstream, client), daemon=True)
    back.start()
    copy(client, upstream)
    back.join()
    client.close()
    upstream.close()


def copy(source: socket.socket, sink: socket.socket) -> None:
    """Bytes from `source` to `sink` until end-of-file, then half-close `sink` (as the client did)."""
    try:
        while data := source.recv(65536):
            sink.sendall(data)
        sink.shutdown(socket.SHUT_WR)
    except OSError:
        for s in (source, sink):  # a reset on one side resets the other
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def datagram_loop(listener: socket.socket, destination: tuple[str, int]) -> None:
    """UDP: each client address gets its own socket toward the container, and a thread for replies."""
    flows: dict[tuple, socket.socket] = {}
    while True:
        data, client = listener.recvfrom(65536)
        if client not in flows:
            flows[client] = socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            flows[client].connect(destination)
            threading.Thread(target=replies, args=(flows[client], listener, client), daemon=True).start()
        flows[client].send(data)


def replies(flow: socket.socket, listener: socket.socket, client: tuple) -> None:
    while True:
        listener.sendto(flow.recv(65536), client)


def stop(pid: int) -> None:
    """End the proxy: its ports close with it."""
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def to_records(ports: list[Port]) -> list[dict]:
    return [asdict(p) for p in ports]
