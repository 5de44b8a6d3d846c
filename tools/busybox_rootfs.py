"""Make a tiny root filesystem from Debian's static busybox, with no network.

    python3 -m tools.busybox_rootfs [DIR]     prints the directory it made

The result is a directory holding /bin/busybox, a link for every applet,
and the empty directories a container expects (/proc, /dev, /etc, /tmp ...).
"""

import os
import shutil
import subprocess
import sys
import tempfile

BUSYBOX = "/bin/busybox"
DIRECTORIES = ("bin", "dev", "etc", "proc", "sys", "tmp", "root", "var", "usr/bin", "usr/sbin", "sbin")


def make_rootfs(target: str, busybox: str = BUSYBOX) -> str:
    """Fill `target` with busybox and its applet links; return `target`."""
    if not os.path.exists(busybox):
        sys.exit(f"error: {busybox} not found\nhint: sudo apt-get install busybox-static")
    for directory in DIRECTORIES:
        os.makedirs(os.path.join(target, directory), exist_ok=True)
    os.chmod(os.path.join(target, "tmp"), 0o1777)
    shutil.copy2(busybox, os.path.join(target, "bin/busybox"))
    applets = subprocess.run([busybox, "--list-full"], capture_output=True, text=True, check=True)
    for applet in applets.stdout.split():
        link = os.path.join(target, applet)
        if not os.path.lexists(link):
            os.symlink("/bin/busybox", link)
    write(target, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    write(target, "etc/group", "root:x:0:\nnogroup:x:65534:\n")
    return target


def write(root: str, path: str, text: str) -> None:
    with open(os.path.join(root, path), "w") as f:
        f.write(text)


if __name__ == "__main__":
    directory = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="busybox-rootfs-")
    print(make_rootfs(directory))
