"""Helpers for driving `python3 -m final.oci`, runc's command line, in tests."""

import json
import os
import select
import subprocess
import sys
import tempfile
import time


class OciRuntime:
    """Runs the implementation's OCI runtime CLI with a --root of the test's own."""

    def __init__(self, impl, root: str) -> None:
        self.impl, self.root = impl, root

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", f"{self.impl.name}.oci", "--root", self.root, *args]

    def __call__(self, *args: str, timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
        kwargs.setdefault("cwd", os.path.dirname(self.impl.path))
        kwargs.setdefault("capture_output", True)
        return subprocess.run(self.command(*args), text=True, timeout=timeout, env=self.impl.env(), **kwargs)

    def leaving_running(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """A command that leaves a container running (create, run --detach).

        The container inherits the command's stdout and stderr, as containerd's
        shim wants it to: pipes would stay open as long as it runs. So they go
        to files, read back when the command returns.
        """
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            result = self(*args, timeout=timeout, capture_output=False, stdin=subprocess.DEVNULL,
                          stdout=out, stderr=err)
            out.seek(0)
            err.seek(0)
            result.stdout, result.stderr = out.read(), err.read()
        return result

    def state(self, container_id: str) -> dict:
        result = self("state", container_id)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)


def write_bundle(bundle: str, rootfs: str, args: list[str], **changes) -> dict:
    """A bundle whose rootfs is `rootfs` and whose config.json is our default spec, changed."""
    os.makedirs(bundle, exist_ok=True)
    config = default_config(args)
    for dotted, value in changes.items():
        place = config
        *parents, last = dotted.split("__")
        for key in parents:
            place = place.setdefault(key, {})
        place[last] = value
    config["root"]["path"] = os.path.relpath(rootfs, bundle) if rootfs.startswith(bundle) else rootfs
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(config, f)
    return config


def default_config(args: list[str]) -> dict:
    """What containerd sends for a plain `ctr run` (captured from containerd 1.6), with `args`."""
    caps = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
            "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
            "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]
    return {
        "ociVersion": "1.0.2-dev",
        "process": {"user": {"uid": 0, "gid": 0}, "args": args,
                    "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                    "cwd": "/", "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
                    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
                    "noNewPrivileges": True},
        "root": {"path": "rootfs"},
        "hostname": "oci-test",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/run", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"},
                                      *({"allow": True, "type": "c", "major": major, "minor": minor, "access": "rwm"}
                                        for major, minor in ((1, 3), (1, 8), (1, 7), (5, 0), (1, 5), (1, 9), (5, 1),
                                                             (5, 2))),
                                      {"allow": True, "type": "c", "major": 136, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount", "network")],
            "maskedPaths": ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug",
                            "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
        },
    }


def read_until(fd: int, marker: bytes | None, timeout: float = 30) -> str:
    """What a terminal shows until `marker` appears (or, with None, until it closes)."""
    chunks, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline and not (marker and marker in chunks):
        if select.select([fd], [], [], 0.5)[0]:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            chunks += chunk
    return chunks.decode(errors="replace")
