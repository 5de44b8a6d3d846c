"""final/ only: bridge networks, NAT, names on user networks, -p, and their cleanup.

Every packet stays on this machine: between the test's containers, their
bridge (each --root gets bridges of its own, on subnets the engine checked
free), loopback, and a network namespace the test makes as "outside".
"""

import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import urllib.request

import pytest

from conftest import needs_root, require_programs, failure_code
from test_lifecycle import no_process_of  # noqa: F401  (a fixture: no monitor of the root outlives the test)
from test_lifecycle import is_gone, pid1_and_monitor, reap_exited_monitors, wait_until

pytestmark = needs_root

@pytest.fixture(autouse=True)
def firewall() -> None:
    require_programs("iptables", "iptables-restore")  # NAT's one external program


SERVE = ("mkdir -p /www && echo hello from $(hostname) > /www/index.html && httpd -p 80 -h /www"
         " && echo ready && exec sleep 1000")


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def refused(result: subprocess.CompletedProcess, *words: str) -> str:
    """An engine error: exit 1 (125 for run), `error:` and `hint:` lines, mentioning `words`."""
    assert result.returncode == failure_code(result), (result.stdout, result.stderr)
    assert "error:" in result.stderr and "hint:" in result.stderr and "Traceback" not in result.stderr
    for word in words:
        assert word in result.stderr
    return result.stderr


def start(dockyard, *args: str, command: str = SERVE) -> subprocess.Popen:
    """A container in the background, once its command has printed `ready`."""
    engine = dockyard.popen("run", "--rm", "--init", *args, "sh", "-c", command)
    line = engine.stdout.readline()
    if line != "ready\n":
        engine.kill()
        pytest.fail(f"the container did not start: {line!r} {engine.communicate()[1]}")
    return engine


def stop(engine: subprocess.Popen) -> None:
    """SIGTERM to the engine reaches the container's init, which ends it."""
    engine.terminate()
    engine.communicate(timeout=60)


def network_record(dockyard, name: str) -> dict:
    return json.loads(ok(dockyard("network", "inspect", name)))[0]


def links() -> set[str]:
    return set(os.listdir("/sys/class/net"))


def our_rules(bridge: str) -> list[str]:
    listing = subprocess.run(["iptables", "-S"], capture_output=True, text=True).stdout
    listing += subprocess.run(["iptables", "-t", "nat", "-S"], capture_output=True, text=True).stdout
    return [line for line in listing.splitlines() if f"dockyard:{bridge}" in line]


def assert_nothing_left(dockyard, network: str = "bridge") -> None:
    record = network_record(dockyard, network)
    bridge = record["Options"]["com.docker.network.bridge.name"]
    assert record["Containers"] == {}
    assert bridge not in links() and our_rules(bridge) == []
    assert not [name for name in links() if name.startswith("veth") and name in leases_veths(dockyard)]


def leases_veths(dockyard) -> set[str]:
    found = set()
    directory = os.path.join(dockyard.root, "networks")
    for name in os.listdir(directory) if os.path.isdir(directory) else []:
        with open(os.path.join(directory, name)) as f:
            found |= {lease["veth"] for lease in json.load(f)["leases"].values()}
    return found


def http_get(host: str, port: int) -> str:
    with urllib.request.urlopen(f"http://{host}:{port}/", timeout=30) as response:
        return response.read().decode()


# --- the default bridge -------------------------------------------------------------------

def test_a_container_on_the_default_bridge_has_eth0_its_address_and_a_route_to_the_bridge(dockyard, rootfs):
    out = ok(dockyard("run", "--rm", "--hostname", "box", "--rootfs", rootfs, "sh", "-c",
                      "ip -4 -o addr show eth0; ip route; cat /etc/hosts; echo --;"
                      " ping -c 1 -W 5 $(ip route | awk '/default/ {print $3}') >/dev/null && echo gateway answers"))
    record = network_record(dockyard, "bridge")
    subnet = ipaddress.ip_network(record["IPAM"]["Config"][0]["Subnet"])
    address = ipaddress.ip_interface(out.split()[3])
    assert address.ip in subnet and address.network == subnet
    assert f"default via {record['IPAM']['Config'][0]['Gateway']} dev eth0" in out
    assert f"{address.ip}\tbox" in out and "127.0.0.1\tlocalhost" in out
    assert out.endswith("gateway answers\n")
    assert_nothing_left(dockyard)


def test_network_none_has_only_lo_and_network_host_shares_the_hosts_interfaces(dockyard, rootfs):
    assert ok(dockyard("run", "--rm", "--network", "none", "--rootfs", rootfs, "ls", "/sys/class/net")).split() == ["lo"]
    out = ok(dockyard("run", "--rm", "--network", "host", "--rootfs", rootfs, "readlink", "/proc/self/ns/net"))
    assert out.strip() == os.readlink("/proc/self/ns/net")  # the host's namespace, not a copy


def test_dns_and_add_host_write_resolv_conf_and_hosts(dockyard, rootfs):
    out = ok(dockyard("run", "--rm", "--dns", "192.0.2.53", "--add-host", "db.example:198.51.100.7",
                      "--rootfs", rootfs, "sh", "-c", "cat /etc/resolv.conf; echo --; cat /etc/hosts"))
    resolv, hosts = out.split("--\n")
    assert [line for line in resolv.splitlines() if line.startswith("nameserver")] == ["nameserver 192.0.2.53"]
    assert "198.51.100.7\tdb.example" in hosts


def test_resolv_conf_has_no_loopback_nameserver_of_the_host(dockyard, rootfs):
    out = ok(dockyard("run", "--rm", "--rootfs", rootfs, "cat", "/etc/resolv.conf"))
    assert not [line for line in out.splitlines() if line.startswith("nameserver 127.")]


# --- user networks ---------------------------------------------------------------------------

def test_containers_on_a_user_network_reach_each_other_by_name_alias_and_address(dockyard, rootfs):
    ok(dockyard("network", "create", "front"))
    web = start(dockyard, "--name", "web", "--network", "front", "--network-alias", "www", "--rootfs", rootfs)
    try:
        address = network_record(dockyard, "front")["Containers"].popitem()[1]["IPv4Address"].split("/")[0]
        out = ok(dockyard("run", "--rm", "--network", "front", "--rootfs", rootfs, "sh", "-c",
                          f"wget -qO- http://web/; wget -qO- http://www/; wget -qO- http://{address}/"))
        assert out.count("hello from") == 3
    finally:
        stop(web)
    assert_nothing_left(dockyard, "front")


def test_a_container_resolves_a_member_that_joined_after_it_started(dockyard, rootfs):
    ok(dockyard("network", "create", "front"))
    waiter = dockyard.popen("run", "--rm", "--network", "front", "--rootfs", rootfs, "sh", "-c",
                            "grep -c latecomer /etc/hosts; until wget -qO- http://latecomer/ 2>/dev/null;"
                            " do sleep 0.1; done")
    try:
        assert waiter.stdout.readline() == "0\n"  # not a member yet
        late = start(dockyard, "--name", "latecomer", "--network", "front", "--rootfs", rootfs)
        try:
            out, err = waiter.communicate(timeout=120)
            assert waiter.returncode == 0, err
            assert out.startswith("hello from")
        finally:
            stop(late)
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.communicate()
    assert_nothing_left(dockyard, "front")


def test_containers_on_different_networks_cannot_reach_each_other(dockyard, rootfs):
    ok(dockyard("network", "create", "front"))
    ok(dockyard("network", "create", "back"))
    web = start(dockyard, "--name", "web", "--network", "front", "--rootfs", rootfs)
    try:
        address = network_record(dockyard, "front")["Containers"].popitem()[1]["IPv4Address"].split("/")[0]
        probe = f"echo 'GET / HTTP/1.0\r\n\r\n' | nc -w 5 {address} 80"
        assert "hello from" in ok(dockyard("run", "--rm", "--network", "front", "--rootfs", rootfs, "sh", "-c", probe))
        other = dockyard("run", "--rm", "--network", "back", "--rootfs", rootfs, "sh", "-c",
                         f"grep -c web /etc/hosts; {probe}")
        assert other.stdout.startswith("0\n") and "hello from" not in other.stdout
    finally:
        stop(web)


def test_containers_started_at_once_get_addresses_of_their_own(dockyard, rootfs):
    ok(dockyard("network", "create", "front"))
    # Each waits until its /etc/hosts lists all four (itself and three peers), says its address, and stays
    # until the test has heard all four: they run at the same time.
    wait_for_all = ("net=$(ip -4 -o addr show eth0 | awk '{print $4}' | cut -d. -f1-2);"
                    " until [ $(grep -c \"^$net\\.\" /etc/hosts) -ge 4 ]; do sleep 0.1; done;"
                    " ip -4 -o addr show eth0; read line")
    engines = [dockyard.popen("run", "-i", "--rm", "--network", "front", "--rootfs", rootfs, "sh", "-c", wait_for_all,
                              stdin=subprocess.PIPE) for _ in range(4)]
    try:
        addresses = {engine.stdout.readline().split()[3] for engine in engines}
    finally:
        for engine in engines:
            engine.communicate("go\n", timeout=120)
    assert len(addresses) == 4 and all(engine.returncode == 0 for engine in engines)
    assert_nothing_left(dockyard, "front")


def test_network_connect_and_disconnect_a_running_container(dockyard, rootfs):
    ok(dockyard("network", "create", "front"))
    ok(dockyard("network", "create", "back"))
    web = start(dockyard, "--name", "web", "--network", "front", "--rootfs", rootfs)
    probe = "wget -qO- http://web/ || echo unreachable"
    try:
        ok(dockyard("network", "connect", "back", "web"))
        assert ok(dockyard("run", "--rm", "--network", "back", "--rootfs", rootfs, "sh", "-c", probe)).startswith("hello")
        ok(dockyard("network", "disconnect", "back", "web"))
        assert network_record(dockyard, "back")["Containers"] == {}
        assert "unreachable" in ok(dockyard("run", "--rm", "--network", "back", "--rootfs", rootfs, "sh", "-c", probe))
    finally:
        stop(web)
    assert_nothing_left(dockyard, "front")
    assert_nothing_left(dockyard, "back")


def test_network_ls_inspect_rm_and_prune(dockyard):
    created = ok(dockyard("network", "create", "--subnet", "10.213.7.0/24", "--gateway", "10.213.7.254", "mine"))
    ok(dockyard("network", "create", "spare"))
    names = [line.split()[1] for line in ok(dockyard("network", "ls")).splitlines()[1:]]
    assert names == ["bridge", "host", "mine", "none", "spare"]
    record = network_record(dockyard, "mine")
    assert record["Id"] == created.strip() and record["Driver"] == "bridge"
    assert record["IPAM"]["Config"] == [{"Subnet": "10.213.7.0/24", "Gateway": "10.213.7.254"}]
    assert ok(dockyard("network", "rm", "mine")) == "mine\n"
    assert "spare" in ok(dockyard("network", "prune"))
    refused(dockyard("network", "inspect", "spare"), "not found")


def test_ps_lists_published_ports_while_running_and_exposed_ones_always(dockyard, rootfs, no_process_of):
    ok(dockyard("import", "-c", "EXPOSE 443", rootfs, "exposing"))
    ok(dockyard("run", "-d", "--name", "web", "-p", "127.0.0.1::80", "exposing", "sleep", "100"))
    try:
        port = ok(dockyard("port", "web", "80")).strip()
        assert port.startswith("127.0.0.1:")
        assert ok(dockyard("ps", "--format", "{{.Ports}}")) == f"{port}->80/tcp, 443/tcp\n"
        assert ok(dockyard("ps")).splitlines()[0].split()[-2:] == ["PORTS", "NAMES"]
    finally:
        ok(dockyard("rm", "-f", "web"))
    ok(dockyard("run", "--name", "done", "--network", "none", "exposing", "true"))
    assert ok(dockyard("ps", "-a", "--format", "{{.Names}} {{.Ports}}")) == "done 443/tcp\n"
    assert_nothing_left(dockyard)


def test_a_run_on_a_network_that_does_not_exist_is_refused_and_leaves_no_container(dockyard, rootfs):
    for command in (["run"], ["run", "-d"], ["create"]):
        refused(dockyard(*command, "--network", "nowhere", "--rootfs", rootfs, "true"), "network nowhere not found")
    assert dockyard("ps", "-a", "-q").stdout == ""


def test_network_container_shares_another_containers_network_namespace(dockyard, rootfs):
    web = start(dockyard, "--name", "web", "--rootfs", rootfs)
    try:
        out = ok(dockyard("run", "--rm", "--network", "container:web", "--rootfs", rootfs, "sh", "-c",
                          "wget -qO- http://127.0.0.1/; ip -4 -o addr show eth0"))
        address = network_record(dockyard, "bridge")["Containers"].popitem()[1]["IPv4Address"]
        assert out.startswith("hello from") and address in out  # web's loopback, web's eth0
    finally:
        stop(web)
    ok(dockyard("run", "--name", "stopped", "--network", "none", "--rootfs", rootfs, "true"))
    refused(dockyard("run", "--rm", "--network", "container:stopped", "--rootfs", rootfs, "true"), "not running")
    refused(dockyard("run", "--rm", "--network", "container:nosuch", "--rootfs", rootfs, "true"), "nosuch")


# --- NAT ------------------------------------------------------------------------------------

def free_subnet(prefix: int) -> ipaddress.IPv4Network:
    """A random /prefix of 198.18.0.0/15 (the benchmarking range) that nothing on this host uses."""
    used = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    used += subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
    taken = [ipaddress.ip_network(w, strict=False) for w in used.split() if "/" in w and w[0].isdigit()]
    for _ in range(1000):  # a random one: tests running side by side pick different ones
        offset = int.from_bytes(os.urandom(4), "big") % 2**17
        candidate = ipaddress.ip_network((0xC6120000 + offset, prefix), strict=False)
        if not any(candidate.overlaps(t) for t in taken):
            return candidate
    pytest.skip(f"no free /{prefix} in 198.18.0.0/15")


@pytest.fixture
def outside():
    """A network namespace that stands for the world: reached from the host over a veth of its own."""
    require_programs("ip")
    tag = os.urandom(3).hex()
    namespace, host_end, far_end = f"dyout{tag}", f"dyo{tag}", f"dyp{tag}"
    subnet = free_subnet(30)
    near, far = [str(a) for a in subnet.hosts()]
    commands = [["ip", "netns", "add", namespace],
                ["ip", "link", "add", host_end, "type", "veth", "peer", "name", far_end, "netns", namespace],
                ["ip", "addr", "add", f"{near}/30", "dev", host_end], ["ip", "link", "set", host_end, "up"],
                ["ip", "-n", namespace, "addr", "add", f"{far}/30", "dev", far_end],
                ["ip", "-n", namespace, "link", "set", far_end, "up"]]
    try:
        for command in commands:
            result = subprocess.run(command, capture_output=True, text=True)
            assert result.returncode == 0, (command, result.stderr)
        yield namespace, near, far, host_end
    finally:
        subprocess.run(["ip", "link", "del", host_end], capture_output=True)
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True)


SAY_PEER = """
import socket, sys
s = socket.socket(); s.bind((sys.argv[1], 7777)); s.listen(1); print("ready", flush=True)
c, peer = s.accept(); c.sendall(peer[0].encode() + b"\\n"); c.close()
"""


def test_outbound_traffic_is_masqueraded_behind_the_hosts_address(dockyard, rootfs, outside):
    namespace, near, far, _ = outside
    server = subprocess.Popen(["ip", "netns", "exec", namespace, "/usr/bin/python3", "-c", SAY_PEER, far],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline() == "ready\n"
        out = ok(dockyard("run", "--rm", "--rootfs", rootfs, "sh", "-c",
                          f"ip -4 -o addr show eth0; nc -w 30 {far} 7777 </dev/null"))
        inside, seen_as = out.split()[3].split("/")[0], out.split()[-1]
        assert seen_as == near and seen_as != inside  # the outside saw the host, not the container
    finally:
        server.kill()
        server.communicate()
    assert_nothing_left(dockyard)


# --- -p -------------------------------------------------------------------------------------

def test_p_publishes_a_port_on_ipv4_and_ipv6_loopback_until_the_container_stops(dockyard, rootfs):
    with socket.socket() as s:  # a port that is free now
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    web = start(dockyard, "--name", "web", "-p", f"{port}:80", "--rootfs", rootfs)
    try:
        assert http_get("127.0.0.1", port).startswith("hello from")
        assert http_get("[::1]", port).startswith("hello from")
        assert ok(dockyard("port", "web")) == f"80/tcp -> 0.0.0.0:{port}\n80/tcp -> [::]:{port}\n"
        settings = json.loads(ok(dockyard("inspect", "web")))[0]["NetworkSettings"]
        assert settings["Ports"] == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": str(port)},
                                                {"HostIp": "::", "HostPort": str(port)}]}
        record = network_record(dockyard, "bridge")
        assert f"{settings['IPAddress']}/{settings['IPPrefixLen']}" == record["Containers"].popitem()[1]["IPv4Address"]
        assert settings["Networks"]["bridge"]["NetworkID"] == record["Id"]
    finally:
        stop(web)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=30)
    assert_nothing_left(dockyard)


@pytest.mark.usefixtures("no_process_of")
def test_a_detached_container_keeps_its_port_after_run_returns_and_stop_closes_it(dockyard, rootfs):
    # run -d: the container's monitor, not the CLI, holds the proxy and tears the network down.
    os.makedirs(os.path.join(rootfs, "www"))
    with open(os.path.join(rootfs, "www", "index.html"), "w") as f:
        f.write("hello from a detached container\n")
    ok(dockyard("run", "-d", "--name", "web", "-p", "127.0.0.1::80", "--rootfs", rootfs, "httpd", "-f", "-p", "80",
                "-h", "/www"))
    try:
        port = int(ok(dockyard("port", "web")).rsplit(":", 1)[1])
        assert http_get("127.0.0.1", port) == "hello from a detached container\n"
    finally:
        ok(dockyard("stop", "web"))
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=30)
    assert_nothing_left(dockyard)
    ok(dockyard("rm", "web"))


@pytest.mark.usefixtures("no_process_of")
def test_after_a_detached_containers_monitor_is_killed_the_next_command_frees_its_network(dockyard, rootfs):
    ok(dockyard("network", "create", "front"))
    container_id = ok(dockyard("run", "-d", "--name", "web", "--network", "front", "-p", "127.0.0.1::80",
                               "--rootfs", rootfs, "httpd", "-f", "-p", "80")).strip()
    port = int(ok(dockyard("port", "web")).rsplit(":", 1)[1])
    pid, monitor = pid1_and_monitor(dockyard, container_id)
    os.kill(monitor, signal.SIGKILL)  # PID 1 and the proxy die with it (PDEATHSIG)
    wait_until(lambda: is_gone(pid), "PID 1 to die with its monitor")
    reap_exited_monitors()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=30)
    ok(dockyard("ps", "-a"))  # the next command puts the network right
    assert_nothing_left(dockyard, "front")


def test_p_with_an_address_a_free_port_and_a_range(dockyard, rootfs):
    web = start(dockyard, "--name", "web", "-p", "127.0.0.1::80", "-p", "[::1]::80", "--rootfs", rootfs,
                command="httpd -p 81 -h / && " + SERVE)
    try:
        lines = ok(dockyard("port", "web", "80")).split()
        (v4,) = [line for line in lines if line.startswith("127.0.0.1:")]
        (v6,) = [line for line in lines if line.startswith("[::1]:")]
        assert http_get("127.0.0.1", int(v4.rsplit(":", 1)[1])).startswith("hello from")
        assert http_get("[::1]", int(v6.rsplit(":", 1)[1])).startswith("hello from")
    finally:
        stop(web)


def test_p_with_a_host_range_takes_a_free_port_of_it(dockyard, rootfs):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        first = taken.getsockname()[1]
        last = min(first + 20, 65535)
        web = start(dockyard, "--name", "web", "-p", f"127.0.0.1:{first}-{last}:80", "--rootfs", rootfs)
        try:
            port = int(ok(dockyard("port", "web", "80")).rsplit(":", 1)[1])
            assert first < port <= last  # not the taken one
            assert http_get("127.0.0.1", port).startswith("hello from")
        finally:
            stop(web)


def test_P_publishes_the_images_exposed_ports(dockyard, busybox_rootfs):
    ok(dockyard("import", "-c", "EXPOSE 80", "-c", f'CMD ["sh", "-c", "{SERVE}"]', busybox_rootfs, "web:1"))
    engine = dockyard.popen("run", "--rm", "--init", "--name", "web", "-P", "web:1")
    try:
        assert engine.stdout.readline() == "ready\n"
        (line, _) = ok(dockyard("port", "web")).splitlines()
        assert line.startswith("80/tcp -> 0.0.0.0:")
        assert http_get("127.0.0.1", int(line.rsplit(":", 1)[1])).startswith("hello from")
    finally:
        stop(engine)


UDP_PROXY = """
import sys
from final import proxy
ports = proxy.parse(f"127.0.0.1::{sys.argv[1]}/udp")
pid = proxy.start(proxy.bind_all(ports), "127.0.0.1")
print(ports[0].host_port, flush=True)
sys.stdin.read()
proxy.stop(pid)
"""


def test_the_proxy_relays_udp_datagrams_both_ways(impl):
    # busybox has no UDP server to run inside a container: the proxy relays to one of the test's own.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as echo, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        echo.bind(("127.0.0.1", 0))
        relay = subprocess.Popen([*impl.argv()[:1], "-c", UDP_PROXY, str(echo.getsockname()[1])], env=impl.env(),
                                 cwd=os.path.dirname(impl.path), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            port = int(relay.stdout.readline())
            client.settimeout(60)
            echo.settimeout(60)
            client.sendto(b"ping", ("127.0.0.1", port))
            data, proxy_side = echo.recvfrom(100)
            echo.sendto(data.upper(), proxy_side)
            assert client.recvfrom(100) == (b"PING", ("127.0.0.1", port))
        finally:
            relay.communicate("")


# --- cleanup --------------------------------------------------------------------------------

def test_rm_f_of_a_running_container_frees_its_address_link_rules_and_port(dockyard, rootfs):
    web = start(dockyard, "--name", "web", "-p", "127.0.0.1::80", "--rootfs", rootfs)
    port = int(ok(dockyard("port", "web")).rsplit(":", 1)[1])
    ok(dockyard("rm", "-f", "web"))
    web.communicate(timeout=60)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=30)
    assert_nothing_left(dockyard)


def test_after_the_engine_is_killed_the_next_command_frees_what_it_held(dockyard, rootfs):
    ok(dockyard("network", "create", "front"))
    web = start(dockyard, "--name", "web", "--network", "front", "-p", "127.0.0.1::80", "--rootfs", rootfs)
    bridge = network_record(dockyard, "front")["Options"]["com.docker.network.bridge.name"]
    assert bridge in links() and our_rules(bridge)
    with open(f"/proc/{web.pid}/task/{web.pid}/children") as f:
        children = [int(pid) for pid in f.read().split()]  # the container and the -p proxy
    web.send_signal(signal.SIGKILL)
    web.communicate(timeout=60)
    for pid in children:
        os.waitpid(pid, 0)  # they die with their engine; the test runner, a subreaper, reaps them
    ok(dockyard("ps", "-a"))  # any command that looks at containers puts things right
    assert_nothing_left(dockyard, "front")
    ok(dockyard("rm", "web"))
    ok(dockyard("network", "rm", "front"))


def test_a_bridge_whose_root_was_deleted_is_removed_with_its_rules_by_the_next_command(dockyard, rootfs):
    ok(dockyard("run", "--rm", "--rootfs", rootfs, "true"))  # this root has networks now
    orphan = f"dockyard{os.urandom(4).hex()[:7]}"  # as a root removed with rm -rf while its bridge was up
    subprocess.run(["ip", "link", "add", orphan, "type", "bridge"], check=True)
    subprocess.run(["iptables-restore", "--noflush"], check=True, text=True,
                   input=f"*filter\n-I FORWARD 1 -o {orphan} -m comment --comment dockyard:{orphan} -j DROP\nCOMMIT\n")
    try:
        ok(dockyard("network", "ls"))
        assert orphan not in links() and our_rules(orphan) == []
    finally:
        subprocess.run(["ip", "link", "del", orphan], capture_output=True)
        subprocess.run(["iptables", "-D", "FORWARD", "-o", orphan, "-m", "comment", "--comment", f"dockyard:{orphan}",
                        "-j", "DROP"], capture_output=True)


# --- bad input --------------------------------------------------------------------------------

@pytest.mark.bad_input
def test_an_unknown_network_is_refused(dockyard, rootfs):
    refused(dockyard("run", "--rm", "--network", "nosuch", "--rootfs", rootfs, "true"), "nosuch", "network ls")


@pytest.mark.bad_input
@pytest.mark.parametrize("spec", ["80:80:80:80", "99999:80", "8000-8002:80-81", "80/sctp", "1.2.3:80:80", "x"])
def test_an_invalid_p_is_refused_before_anything_is_made(dockyard, rootfs, spec):
    refused(dockyard("run", "--rm", "-p", spec, "--rootfs", rootfs, "true"), "-p")
    assert ok(dockyard("ps", "-aq")) == ""


@pytest.mark.bad_input
def test_p_and_network_alias_need_a_network_that_has_them(dockyard, rootfs):
    refused(dockyard("run", "--rm", "--network", "none", "-p", "80", "--rootfs", rootfs, "true"), "-p")
    refused(dockyard("run", "--rm", "--network-alias", "web", "--rootfs", rootfs, "true"), "user network")


@pytest.mark.bad_input
def test_a_host_port_in_use_is_refused_and_leaves_nothing(dockyard, rootfs):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        refused(dockyard("run", "--rm", "-p", f"127.0.0.1:{port}:80", "--rootfs", rootfs, "true"),
                f"{port}", "already in use")
    assert_nothing_left(dockyard)


@pytest.mark.bad_input
def test_an_overlapping_subnet_is_refused(dockyard):
    ok(dockyard("network", "create", "--subnet", "10.213.8.0/24", "one"))
    refused(dockyard("network", "create", "--subnet", "10.213.8.128/25", "two"), "overlaps")
    refused(dockyard("network", "create", "--subnet", "not-a-subnet", "two"), "invalid subnet")
    refused(dockyard("network", "inspect", "two"), "not found")


@pytest.mark.bad_input
def test_a_subnet_in_use_on_the_host_is_refused_at_create_and_at_the_first_run(dockyard, rootfs, outside):
    _, near, _, host_end = outside
    refused(dockyard("network", "create", "--subnet", str(ipaddress.ip_network(f"{near}/24", strict=False)), "clash"),
            "overlaps", near.rsplit(".", 1)[0])
    mine = free_subnet(24)
    ok(dockyard("network", "create", "--subnet", str(mine), "mine"))  # free now ...
    subprocess.run(["ip", "addr", "add", f"{next(mine.hosts())}/24", "dev", host_end], check=True)  # ... taken now
    refused(dockyard("run", "--rm", "--network", "mine", "--rootfs", rootfs, "true"), "in use on this host")
    assert_nothing_left(dockyard, "mine")


@pytest.mark.bad_input
def test_without_iptables_the_default_is_none_with_a_warning_and_bridge_is_refused(dockyard, rootfs):
    bare = "/usr/bin:/bin"
    if shutil.which("iptables-restore", path=bare):
        pytest.skip("iptables-restore is in /usr/bin or /bin here: no PATH hides it")
    env = {**dockyard.impl.env(), "PATH": bare}
    result = dockyard("run", "--rm", "--rootfs", rootfs, "ls", "/sys/class/net", env=env)
    assert result.returncode == 0 and result.stdout == "lo\n"
    assert "warning: iptables is not installed" in result.stderr and "hint:" in result.stderr
    refused(dockyard("run", "--rm", "--network", "bridge", "--rootfs", rootfs, "true", env=env), "iptables")


@pytest.mark.bad_input
def test_network_rm_of_a_network_with_a_container_is_refused(dockyard, rootfs):
    ok(dockyard("network", "create", "front"))
    web = start(dockyard, "--name", "web", "--network", "front", "--rootfs", rootfs)
    try:
        refused(dockyard("network", "rm", "front"), "web", "disconnect")
    finally:
        stop(web)
    ok(dockyard("network", "rm", "front"))
    refused(dockyard("network", "rm", "bridge"), "pre-defined")


@pytest.mark.bad_input
def test_a_bridge_network_needs_root_and_rootless_gets_none(nobody):
    refused(nobody("run", "--rm", "--network", "bridge", "--rootfs", nobody.rootfs, "true"), "root", "none")
    assert ok(nobody("run", "--rm", "--rootfs", nobody.rootfs, "ls", "/sys/class/net")).split() == ["lo"]
    refused(nobody("network", "create", "mine"), "root")
