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
