# chapter: final
"""`top`: a container's processes, as the host sees them (`ps -ef`'s columns).

Every process of a container lives in its PID namespace, the one its PID 1
was cloned into (exec joins it too), so the host's /proc, filtered by the
namespace that /proc/PID/ns/pid names, lists them all, with host pids. The
columns come from /proc/PID/stat, whose times count clock ticks.
"""

import os
import pwd
import time

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PTS_MAJORS = range(136, 144)  # Unix98 ptys: /dev/pts/N


def processes_in_namespace_of(pid1: int) -> list[int]:
    """The host pids of every process in the PID namespace of `pid1`, in order."""
    namespace = os.readlink(f"/proc/{pid1}/ns/pid")
    found = []
    for name in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.readlink(f"/proc/{name}/ns/pid") == namespace:
                found.append(int(name))
        except OSError:
            continue  # it exited while we looked
    return sorted(found)


def ps_row(pid: int, boot_time: float) -> list[str] | None:
    """UID PID PPID C STIME TTY TIME CMD for one process; None if it has exited."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            comm, _, rest = f.read().rpartition(")")
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read().rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace")
        uid = os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None
    fields = rest.split()  # fields[0] is the state, field 3 of stat(5)
    ppid, tty, cpu_ticks, start_ticks = int(fields[1]), int(fields[4]), int(fields[11]) + int(fields[12]), int(fields[19])
    started = boot_time + start_ticks / CLOCK_TICKS
    cpu_percent = int(100 * cpu_ticks / CLOCK_TICKS / max(time.time() - started, 1e-3))
    return [user_name(uid), str(pid), str(ppid), str(cpu_percent), time.strftime("%H:%M", time.localtime(started)),
            tty_name(tty), clock(cpu_ticks // CLOCK_TICKS), cmdline or f"[{comm.partition('(')[2]}]"]


def boot_time() -> float:
    """When the machine booted, from /proc/stat's btime."""
    with open("/proc/stat") as f:
        return float(next(line.split()[1] for line in f if line.startswith("btime")))


def user_name(uid: int) -> str:
    """The host's name for `uid`, as ps shows it, or the number."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def tty_name(tty_nr: int) -> str:
    """stat's tty_nr as ps shows it: pts/N, or ? for none."""
    major, minor = (tty_nr >> 8) & 0xfff, (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00)
    if major in PTS_MAJORS:
        return f"pts/{(major - PTS_MAJORS.start) * 256 + minor}"
    return "?" if tty_nr == 0 else f"{major}:{minor}"


def clock(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def table(pid1: int) -> list[list[str]]:
    """`top`'s header and one row per process of the container."""
    booted = boot_time()
    rows = [ps_row(pid, booted) for pid in processes_in_namespace_of(pid1)]
    return [["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"], *(r for r in rows if r)]
