# chapter: final
"""Crash points: named places where a test may kill the engine mid-write.

A crash test that sends SIGKILL after a sleep proves little: the kill may
land before the work starts or after it has ended. So the engine names the
steps after which a crash would leave something half-done, and calls
`fault_point(name)` there. Started with DOCKYARD_FAULT=NAME (or NAME:N, the
Nth visit), the engine kills itself with SIGKILL at that point, as a power
cut or the OOM killer would; tests/test_crashes.py does this at every visit
of every point by import, load, commit, pull and build, and checks that the
store is still readable and that `image prune` cleans up what was left. This
is how SQLite tests its crash recovery. Without the variable, a point costs
one comparison.

The points, in the shared write steps that every command goes through:

    blob-written     a blob's temp file is complete and fsync'd, not yet renamed to its digest
    blob-stored      the blob is under blobs/sha256/
    file-written     a small file's replacement (index.json, a build cache entry) is in tmp/
    file-replaced    ... and renamed over the old one
    layer-unpacked   a layer is unpacked in tmp/, not yet renamed to layers/<diff id>
    layer-stored     ... and renamed
    container-layers a new container's layers are made, its record not yet in place
    monitor-spawned  run -d / start: the monitor is forked, the CLI has not heard from it
    container-created  create's monitor: PID 1 waits at its exec fifo, create has its answer
    container-running  a foreground run: the command runs, the CLI is its parent
    attach-connected   attach: the CLI is connected to the container's monitor

Two faults are no crash: DOCKYARD_FAULT=signals-astray holds back each
signal that the engine forwards until its main thread sleeps in a wait, then
lets another thread take it, as if it had come just before that wait began
(see signals_astray); DOCKYARD_FAULT=init-late holds --init's PID 1 after it
forked the command, until a signal for the command has come (see init_late).
"""

import os
import signal

POINTS = ("blob-written", "blob-stored", "file-written", "file-replaced", "layer-unpacked", "layer-stored",
          "container-layers", "monitor-spawned", "container-running",
          "attach-connected")
_WANTED, _, _VISIT = os.environ.get("DOCKYARD_FAULT", "").partition(":")
_visits: dict[str, int] = {}


def fault_point(name: str) -> None:
    """Die by SIGKILL here if DOCKYARD_FAULT names this point (and this is the visit it names)."""
    if name == _WANTED:
        _visits[name] = _visits.get(name, 0) + 1
        if _visits[name] == int(_VISIT or 1):
            os.write(2, f"DOCKYARD_FAULT: killed at {name}, visit {_visits[name]}\n".encode())
            os.kill(os.getpid(), signal.SIGKILL)



# --- signals astray -------------------------------------------------------------------
# Python's C-level signal handler only notes a signal; the main thread runs the
# Python handler (the engine's forwarder) at its next bytecode. A signal that
# comes after that thread's last check and before it blocks in a system call is
# not acted on until the call returns: a moment that a loaded machine gives
# rarely (it hung a CI run once), made certain here.

WAITS = ("wait4", "waitid", "poll", "ppoll", "select", "pselect6")  # how the engine waits, in the kernel


def signals_astray() -> None:
    """With DOCKYARD_FAULT=signals-astray, let each forwarded signal arrive only once the main thread waits."""
    if _WANTED != "signals-astray":
        return
    import threading
    from .config import FORWARDED_SIGNALS
    forwarded = {getattr(signal, name) for name in FORWARDED_SIGNALS}
    signal.pthread_sigmask(signal.SIG_BLOCK, forwarded)  # in every thread: the kernel keeps them pending
    threading.Thread(target=deliver_once_waiting, args=(threading.get_native_id(), forwarded), daemon=True).start()


def deliver_once_waiting(main: int, forwarded: set[int]) -> None:
    """Take each signal as it comes; raise it in this thread once the main thread sleeps in one of WAITS."""
    import time
    from .syscalls import native
    waits = {number for name, number in native()[1].items() if name in WAITS}
    while True:
        signum = signal.sigwait(forwarded)
        while not waiting_in(main, waits):
            time.sleep(0.001)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signum])
        signal.raise_signal(signum)  # to this thread: Python's C handler runs here, the main thread sleeps on
        signal.pthread_sigmask(signal.SIG_BLOCK, [signum])


def waiting_in(thread: int, waits: set[int]) -> bool:
    """Whether `thread` of this process is asleep in one of the system calls `waits` (see proc(5))."""
    with open(f"/proc/self/task/{thread}/syscall") as f:
        number = f.read().split()[0]
    return number.lstrip("-").isdigit() and int(number) in waits


def init_late() -> None:
    """With DOCKYARD_FAULT=init-late, go on only once a forwarded signal is pending. Call in --init's PID 1."""
    # As if the command had started, printed and been signalled before its init went on:
    # a signal that PID 1 neither handles nor blocks is dropped, and this waits for ever.
    if _WANTED != "init-late":
        return
    import time
    from .config import FORWARDED_SIGNALS
    forwarded = {getattr(signal, name) for name in FORWARDED_SIGNALS}
    while not signal.sigpending() & forwarded:
        time.sleep(0.001)
