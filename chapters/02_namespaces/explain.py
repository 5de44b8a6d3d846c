"""--explain: the engine says what it asks of the kernel and the disk, as it asks.

    $ sudo python3 -m final --explain run --rootfs /tmp/rootfs true
    ...
    chroot(/tmp/rootfs) -> 0  [ch 01]
    mount(proc, /proc, proc, MS_NOSUID|MS_NODEV|MS_NOEXEC) -> 0  [ch 01]
    execve(true)  [ch 01]

One line per step, on stderr, tagged with the chapter that teaches it. No
code of the engine calls this module. `install()` wraps the few functions
through which every step goes (the system calls of libc.py, and from later
chapters on a few helpers that write files or talk to servers), so that each
wrapped call prints its line when it returns. Without --explain nothing is
wrapped, and the narration costs nothing at all.

Wrapping replaces the module's attribute, so it reaches every caller that
writes `libc.mount(...)`, which is why the engine never imports these
functions by name.
"""

import errno
import functools
import importlib
import os
import re
from typing import Any, Callable

from . import libc

# What install() wraps: (dotted target, chapter, how the call reads, how its result reads).
# A result of None prints the line before the call: for calls that never return, like execve.
Narrator = tuple[str, Callable[..., int], Callable[..., str], Callable[[Any], str | None] | None]
NARRATORS: list[Narrator] = []
FINAL = 99  # a step beyond the seven chapters: final/ only, tagged [final]
LONG_ID = re.compile(r"\b([0-9a-f]{12})[0-9a-f]{52}\b")
_out = -1  # our own copy of stderr, so the container's redirections do not swallow it


def narrates(target: str, chapter: int | Callable[..., int], result: Callable[[Any], str | None] | None = str):
    """Register the decorated function as the way a call of `target` reads."""
    def register(describe: Callable[..., str]) -> Callable[..., str]:
        NARRATORS.append((target, chapter if callable(chapter) else lambda *_, **__: chapter, describe, result))
        return describe
    return register


def install() -> None:
    """Wrap every narrated function; from now on each call prints one line."""
    global _out
    _out = os.dup(2)  # not inheritable: the container's command never holds it
    for target, chapter, describe, result in NARRATORS:
        owner, name = resolve(target)
        setattr(owner, name, narrated(getattr(owner, name), chapter, describe, result))


def resolve(target: str) -> tuple[Any, str]:
    """'libc.mount' -> (the libc module, 'mount'); 'blobs.BlobStore.put_blob_with' -> (the class, ...)."""
    *path, name = target.split(".")
    modules = [part for part in path if part.islower()]  # modules are lower_case, classes CamelCase
    owner: Any = importlib.import_module("." + ".".join(modules), __package__)
    for attribute in path[len(modules):]:
        owner = getattr(owner, attribute)
    return owner, name


def narrated(function: Callable, chapter: Callable[..., int], describe: Callable[..., str],
             result: Callable[[Any], str | None] | None) -> Callable:
    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        if result is None:
            say(describe(*args, **kwargs), chapter(*args, **kwargs))
            return function(*args, **kwargs)
        try:
            value = function(*args, **kwargs)
        except OSError as err:
            say(f"{describe(*args, **kwargs)} -> {errno_name(err)}", chapter(*args, **kwargs))
            raise
        shown = result(value)
        if shown is not None:
            say(f"{describe(*args, **kwargs)}{' -> ' + shown if shown else ''}", chapter(*args, **kwargs))
        return value
    return call


def say(text: str, chapter: int) -> None:
    text = LONG_ID.sub(r"\1...", text)  # a container or layer id: its first 12 digits, as docker ps shows it
    try:
        tag = "final" if chapter == FINAL else f"ch {chapter:02}"
        os.write(_out, f"{text}  [{tag}]\n".encode(errors="replace"))
    except OSError:
        pass  # a closed stderr must not change what the engine does


def errno_name(err: OSError) -> str:
    return f"{errno.errorcode.get(err.errno or 0, 'error')} ({err.strerror})"


def flag_names(value: int, prefix: str) -> str:
    """MS_BIND|MS_REC for 0x5000: the names that libc.py gives the bits."""
    names = [name for name, bit in vars(libc).items()
             if name.startswith(prefix) and isinstance(bit, int) and bit and value & bit == bit
             and bin(bit).count("1") == 1]
    return "|".join(sorted(names, key=lambda name: getattr(libc, name))) or "0"


def zero(value: Any) -> str:
    return "0" if value is None else str(value)


# --- chapter 1: chroot -------------------------------------------------------------------

@narrates("libc.chroot", 1, zero)
def chroot(path: str) -> str:
    return f"chroot({path})"


def mount_chapter(source: str | None, target: str, fstype: str | None, *_: Any) -> int:
    """The chapter that teaches a mount of this type: chapter 1 for /proc, else chapter 2 or the type's own."""
    return {"proc": 1, "cgroup": 3, "cgroup2": 3, "overlay": 4}.get(fstype or "", 2)


@narrates("libc.mount", mount_chapter, zero)
def mount(source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> str:
    if fstype == "overlay" and data:
        lowers = next((option.count(":") + 1 for option in data.split(",") if option.startswith("lowerdir=")), 0)
        data = f"lowerdir={lowers} layers"
    options = ", ".join(part for part in (flag_names(flags, "MS_") if flags else "", data or "") if part)
    return f"mount({source}, {target}, {fstype}{', ' + options if options else ''})"


@narrates("libc.umount", lambda target, *_: 1 if target.endswith("/proc") else 2, zero)
def umount(target: str, flags: int = 0) -> str:
    return f"umount2({target}, {flag_names(flags, 'MNT_') if flags else 0})"


@narrates("process.exec_command", 1, result=None)
def exec_command(argv: list[str], env: dict[str, str]) -> str:
    return f"execve({' '.join(argv)})"


# --- chapter 2: namespaces ---------------------------------------------------------------

@narrates("libc.clone", 2, lambda pid: None if pid == 0 else str(pid))  # the child says nothing
def clone(flags: int, cgroup: int = -1) -> str:
    return f"clone3({flag_names(flags | (libc.CLONE_INTO_CGROUP if cgroup >= 0 else 0), 'CLONE_')})"


@narrates("libc.unshare", 2, zero)
def unshare(flags: int) -> str:
    return f"unshare({flag_names(flags, 'CLONE_')})"


@narrates("libc.setns", 2, zero)
def setns(fd: int, nstype: int = 0) -> str:
    return f"setns({os.readlink(f'/proc/self/fd/{fd}') if fd >= 0 else fd})"


@narrates("libc.sethostname", 2, zero)
def sethostname(name: str) -> str:
    return f"sethostname({name})"


@narrates("libc.pivot_root", 2, zero)
def pivot_root(new_root: str, put_old: str) -> str:
    return f"pivot_root({new_root}, {put_old})"


@narrates("libc.prctl", lambda option, *_: 2 if option == libc.PR_SET_PDEATHSIG else FINAL, zero)
def prctl(option: int, arg2: int = 0) -> str:
    names = {value: name for name, value in vars(libc).items() if name.startswith("PR_") and isinstance(value, int)}
    return f"prctl({names.get(option, option)}, {describe_prctl_argument(option, arg2)})"


def describe_prctl_argument(option: int, argument: int) -> str:
    """PR_CAPBSET_DROP's argument is a capability: name it (final/ drops them one by one)."""
    if option == getattr(libc, "PR_CAPBSET_DROP", None):
        from . import capabilities
        return f"CAP_{capabilities.NAMES[argument]}" if argument < len(capabilities.NAMES) else str(argument)
    return str(argument)


@narrates("namespaces.write_proc", 2, lambda _: "")
def write_proc(pid: int, name: str, text: str) -> str:
    return f"write /proc/{pid}/{name} = {' '.join(text.split())}"
