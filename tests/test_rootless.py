"""Chapter 02 on: an ordinary user runs containers with no root at all.

The `nobody` fixture runs the CLI as uid 65534 with its own rootfs. A user
namespace makes it root inside; outside it is still nobody, and can do
nothing that nobody could not.
"""

import os
import socket
import subprocess

from conftest import NOBODY, needs_root, failure_code
from test_namespaces import ORPHAN, UNTIL_GONE

pytestmark = needs_root  # to become nobody, and to plant root's files


def run_ok(nobody, *args: str) -> str:
    result = nobody("run", "--rootfs", nobody.rootfs, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_an_ordinary_user_can_run_a_container(nobody):
    assert run_ok(nobody, "echo", "hello") == "hello\n"


def test_the_user_is_root_inside_and_uid_0_maps_to_its_own_uid_outside(nobody):
    out = run_ok(nobody, "sh", "-c", "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map")
    uid, gid, uid_map, gid_map = out.splitlines()
    assert (uid, gid) == ("0", "0")
    assert uid_map.split() == gid_map.split() == ["0", str(NOBODY), "1"]


def test_a_rootless_container_has_every_namespace_of_its_own(nobody):
    out = run_ok(nobody, "sh", "-c", "echo $$; hostname; ls /sys/class/net; readlink /proc/self/ns/user")
    pid, hostname, interfaces, user_ns = out.split("\n", 3)
    assert pid == "1" and len(hostname) == 12 and interfaces == "lo"
    assert user_ns.strip() != os.readlink("/proc/self/ns/user")


def test_a_rootless_container_can_write_its_own_rootfs_as_the_user_outside(nobody):
    assert run_ok(nobody, "sh", "-c", "echo made > /made-inside && cat /made-inside") == "made\n"
    # Where the file lands is the storage's business (the rootfs, or a layer of its own from
    # chapter 4 on); whoever owns it on the host is the user, not root.
    scratch = os.path.dirname(nobody.rootfs)
    made = [os.path.join(d, "made-inside") for d, _, files in os.walk(scratch) if "made-inside" in files]
    assert made and all(os.stat(path).st_uid == NOBODY for path in made)


def test_a_rootless_container_cannot_read_or_change_a_root_only_file(nobody):
    secret = os.path.join(nobody.rootfs, "root-only")
    with open(secret, "w") as f:
        f.write("root's secret\n")
    os.chmod(secret, 0o600)  # owned by the real root, who is not mapped inside
    result = nobody("run", "--rootfs", nobody.rootfs, "sh", "-c",
                    "ls -ln /root-only; cat /root-only; echo changed >> /root-only; chmod 666 /root-only")
    assert "secret" not in result.stdout
    assert result.stdout.split()[2:4] == ["65534", "65534"]  # unmapped owners show as the overflow id
    assert result.stderr.count("Permission denied") + result.stderr.count("Operation not permitted") == 3
    with open(secret) as f:
        assert f.read() == "root's secret\n"
    assert os.stat(secret).st_mode & 0o777 == 0o600


def test_a_rootless_container_cannot_change_the_hosts_hostname(nobody):
    before = socket.gethostname()
    assert run_ok(nobody, "sh", "-c", "hostname mine && hostname") == "mine\n"
    assert socket.gethostname() == before


def test_a_rootless_container_can_share_the_hosts_network(nobody):
    before = set(os.listdir("/sys/class/net"))
    out = run_ok(nobody, "--network", "host", "ls", "/sys/class/net")
    after = set(os.listdir("/sys/class/net"))
    assert before & after <= set(out.split()) <= before | after  # links others add meanwhile may come and go


def test_rootless_with_init_reaps_and_exits_with_the_commands_code(nobody):
    # The orphan scene of test_namespaces.py: a zombie stays unless our init reaps it.
    assert run_ok(nobody, "--init", "sh", "-c", ORPHAN.format(watch=UNTIL_GONE)).split() == ["gone"]
    result = nobody("run", "--init", "--rootfs", nobody.rootfs, "sh", "-c", "exit 5")
    assert result.returncode == 5, result.stderr



def test_ubuntus_apparmor_restriction_on_user_namespaces_is_named_with_what_to_change(nobody):
    # Ubuntu 24.04 (kernel.apparmor_restrict_unprivileged_userns=1) lets a user make a user namespace
    # but gives it no capabilities. Played here in a mount namespace whose /proc is a tmpfs that holds
    # only the two sysctls the engine reads: the engine's own probe cannot write its id maps there.
    script = ("mount -t tmpfs tmpfs /proc && mkdir -p /proc/sys/kernel /proc/sys/user && "
              "echo 1 > /proc/sys/kernel/apparmor_restrict_unprivileged_userns && "
              "echo 15000 > /proc/sys/user/max_user_namespaces && "
              'exec setpriv --reuid=65534 --regid=65534 --clear-groups "$@"')
    result = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "-",
                             *nobody.command("run", "--rootfs", nobody.rootfs, "true")],
                            capture_output=True, text=True, timeout=60, cwd="/",
                            env={**nobody.impl.env(), "HOME": "/", "USER": "nobody"})
    assert result.returncode == failure_code(result), result.stdout + result.stderr
    assert "kernel.apparmor_restrict_unprivileged_userns=1" in result.stderr
    assert "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0" in result.stderr
