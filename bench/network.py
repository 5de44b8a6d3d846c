"""What does a network cost? Setup per container, and the -p proxy beside a direct connection.

    sudo python3 bench/network.py [-n RUNS] [--mb MB]

1. Wiring one container: a veth pair with its peer born in a fresh network
   namespace as eth0, both ends up, an address and a default route inside,
   then the pair deleted. Through final/netlink.py (one process, a few
   messages) and through the same steps as ip(8) commands (a process each).
2. `run --rm --rootfs R true` with --network none and with the default
   bridge (which also makes the bridge, its NAT rules and a lease, and takes
   them down again).
3. -p: download speed of a big file from busybox httpd, and the latency of
   one small HTTP request (connect, request, answer), from the host through
   the proxy on 127.0.0.1, beside the same to the container's own address.

Docker's or Podman's bridge are timed too when their daemon or binary
answers; on machines without them the table says so. This is a benchmark,
not a test: it asserts nothing. Everything stays on this host: the
containers' bridge and loopback.
"""

import argparse
import ipaddress
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from final import netlink  # noqa: E402
from tools.busybox_rootfs import make_rootfs  # noqa: E402

SUBNET = ipaddress.IPv4Interface("10.254.77.2/24")  # only inside the throwaway namespaces
GATEWAY = "10.254.77.1"


def namespace_holder() -> subprocess.Popen:
    """A process in a network namespace of its own, to wire into."""
    holder = subprocess.Popen(["unshare", "--net", "sh", "-c", "echo ready; exec sleep 600"],
                              stdout=subprocess.PIPE, text=True)
    holder.stdout.readline()
    return holder


def wire_with_netlink(pid: int, n: int) -> None:
    with netlink.Netlink() as nl:
        nl.create_veth(f"vbench{n}", None, "eth0", pid)  # no bridge here: the wiring alone
        nl.set_up(nl.link_index(f"vbench{n}"))
        with netlink.Netlink.inside(pid) as inner:
            index = inner.link_index("eth0")
            inner.add_address(index, SUBNET)
            inner.set_up(index)
            inner.add_default_route(ipaddress.IPv4Address(GATEWAY))
        nl.delete_link(f"vbench{n}")


def wire_with_ip(pid: int, n: int) -> None:
    inside = ["nsenter", f"--net=/proc/{pid}/ns/net", "ip"]
    for argv in (["ip", "link", "add", f"vbench{n}", "type", "veth", "peer", "name", "eth0", "netns", str(pid)],
                 ["ip", "link", "set", f"vbench{n}", "up"],
                 [*inside, "addr", "add", str(SUBNET), "dev", "eth0"],
                 [*inside, "link", "set", "eth0", "up"],
                 [*inside, "route", "add", "default", "via", GATEWAY],
                 ["ip", "link", "del", f"vbench{n}"]):
        subprocess.run(argv, check=True, capture_output=True)


def time_wiring(runs: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"rtnetlink (final/netlink.py)": [], "ip(8) + nsenter(1)": []}
    for n in range(runs):
        for label, wire in (("rtnetlink (final/netlink.py)", wire_with_netlink), ("ip(8) + nsenter(1)", wire_with_ip)):
            holder = namespace_holder()
            try:
                start = time.perf_counter()
                wire(holder.pid, n)
                times[label].append(time.perf_counter() - start)
            finally:
                holder.kill()
                holder.wait()
    return times


def engine(root: str, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "final", "--root", root, *args], cwd=REPO,
                          capture_output=True, text=True, **kwargs)


def time_runs(root: str, rootfs: str, runs: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"run --network none": [], "run (default bridge)": []}
    for _ in range(runs):
        for label, flags in (("run --network none", ["--network", "none"]), ("run (default bridge)", [])):
            start = time.perf_counter()
            engine(root, "run", "--rm", *flags, "--rootfs", rootfs, "true", check=True)
            times[label].append(time.perf_counter() - start)
    return times


def server_command(megabytes: int) -> str:
    return (f"mkdir -p /www && echo hi > /www/index.html && dd if=/dev/zero of=/www/big bs=1M count={megabytes}"
            " 2>/dev/null && httpd -p 80 -h /www && echo ready && exec sleep 3600")


def start_server(root: str, rootfs: str, megabytes: int) -> tuple[subprocess.Popen, str, int]:
    """A container with httpd on 80 (a small page and a big file), published on a free loopback port."""
    server = subprocess.Popen([sys.executable, "-m", "final", "--root", root, "run", "--rm", "--init", "--name", "bench",
                               "-p", "127.0.0.1::80", "--rootfs", rootfs, "sh", "-c", server_command(megabytes)],
                              cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert server.stdout.readline() == "ready\n"
    port = int(engine(root, "port", "bench", "80").stdout.rsplit(":", 1)[1])
    network = json.loads(engine(root, "network", "inspect", "bridge").stdout)[0]
    address = next(iter(network["Containers"].values()))["IPv4Address"].split("/")[0]
    return server, address, port


def throughput(host: str, port: int, megabytes: int) -> float:
    """MB/s of downloading the container's big file over HTTP."""
    start = time.perf_counter()
    received = fetch(host, port, b"/big")
    assert received > megabytes << 20, received
    return megabytes / (time.perf_counter() - start)


def fetch(host: str, port: int, path: bytes) -> int:
    """Connect, send one HTTP request and read the whole answer; return its size."""
    size = 0
    with socket.create_connection((host, port)) as s:
        s.sendall(b"GET " + path + b" HTTP/1.0\r\n\r\n")
        while data := s.recv(1 << 20):
            size += len(data)
    return size


def request_latency(host: str, port: int) -> float:
    """Seconds to connect, send one HTTP request and read the whole (small) answer."""
    start = time.perf_counter()
    fetch(host, port, b"/")
    return time.perf_counter() - start


def peers() -> str:
    found = []
    for tool, probe in (("docker", ["docker", "info"]), ("podman", ["podman", "info"])):
        if shutil.which(tool):
            answer = subprocess.run(probe, capture_output=True, timeout=20)
            found.append(f"{tool}: {'answers' if answer.returncode == 0 else 'installed, no daemon'}")
        else:
            found.append(f"{tool}: not installed")
    return ", ".join(found)


def row(label: str, samples: list[float], unit: str = "ms", scale: float = 1000) -> str:
    values = [s * scale for s in samples]
    return (f"{label:<40} median {statistics.median(values):8.2f} {unit}   "
            f"min {min(values):8.2f}   max {max(values):8.2f}   (n={len(values)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=20)
    parser.add_argument("--mb", type=int, default=256, help="megabytes per throughput run")
    args = parser.parse_args()
    print(f"peers: {peers()} (their bridges are not timed where they do not answer)\n")
    print("1. wiring one container (veth into a new netns, addresses, route, delete)")
    for label, samples in time_wiring(args.runs).items():
        print("  " + row(label, samples))
    scratch = tempfile.mkdtemp(prefix="dockyard-bench-net-")
    try:
        rootfs = make_rootfs(os.path.join(scratch, "rootfs"))
        root = os.path.join(scratch, "state")
        print("\n2. a whole `run --rm true`")
        for label, samples in time_runs(root, rootfs, args.runs).items():
            print("  " + row(label, samples))
        server, address, port = start_server(root, rootfs, args.mb)
        try:
            print("\n3. -p proxy beside a direct connection to the container (HTTP from busybox httpd)")
            targets = (("direct  " + address, address), ("proxy   127.0.0.1", "127.0.0.1"))
            for label, host in targets:
                rates = [throughput(host, 80 if host == address else port, args.mb) for _ in range(5)]
                print(f"  download {label:<28} median {statistics.median(rates):8.1f} MB/s   "
                      f"min {min(rates):8.1f}   max {max(rates):8.1f}   (n=5, {args.mb} MB each)")
            for label, host in targets:
                samples = [request_latency(host, 80 if host == address else port) for _ in range(args.runs * 5)]
                print("  " + row(f"HTTP request {label}", samples))
        finally:
            server.terminate()
            server.wait()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
