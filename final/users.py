# chapter: 05
"""Becoming the container's user: -u, or the image's User, looked up inside.

The runtime switches user after pivot_root, so the names are those of the
container's own /etc/passwd and /etc/group: a hostile image's symlinks
resolve inside it, never on the host.
"""

import os

from . import imageconfig


def switch_user(user: str, env: dict[str, str]) -> None:
    """Become `user` (name, uid, name:group ...) as the container's /etc/passwd says. Call in the child."""
    uid, gid, groups, home = imageconfig.lookup_user(user, read_text("/etc/passwd"), read_text("/etc/group"))
    os.setgroups([gid, *groups])  # as Docker: the primary group is among the groups too
    os.setgid(gid)
    os.setuid(uid)
    if env.get("HOME") in (None, "/root") and home:
        env["HOME"] = home


def read_text(path: str) -> str:
    try:
        with open(path, errors="replace") as f:
            return f.read(1 << 20)
    except OSError:
        return ""
