"""Progress like Docker's: a line per layer, redrawn in place on a terminal.

    3f4d90098f5b: Downloading [=========>          ]  12.5MB/25.0MB
    2b1f63b9bd3c: Pull complete

On a terminal each layer owns a line that ANSI escapes move back to and
redraw (at most ten times a second); in a pipe or a log, only the final
state of each layer is printed, once.
"""

import sys
import threading
import time
from typing import TextIO

DONE = {"pull": "Pull complete", "push": "Pushed"}
WORDS = {"exists": "Already exists", "mounted": "Mounted", "download": "Downloading", "upload": "Pushing"}
WIDTH = 30


class Progress:
    """A report(event, digest, done, total) callback that draws on `out`."""

    def __init__(self, verb: str, out: TextIO = sys.stdout) -> None:
        self.verb, self.out, self.tty = verb, out, out.isatty()
        self.rows: dict[str, int] = {}
        self.drawn = 0.0
        self.lock = threading.Lock()

    def __call__(self, event: str, digest: str, done: int, total: int) -> None:
        short = digest.split(":")[-1][:12]
        words = DONE[self.verb] if event == "done" else WORDS[event]
        if self.verb == "push" and event == "exists":
            words = "Layer already exists"
        with self.lock:
            if not self.tty:
                if event not in ("download", "upload"):
                    print(f"{short}: {words}", file=self.out, flush=True)
                return
            busy = event in ("download", "upload")
            if busy and time.monotonic() - self.drawn < 0.1 and short in self.rows:
                return
            self.draw(short, f"{short}: {words} {bar(done, total) if busy else ''}".rstrip())

    def draw(self, short: str, text: str) -> None:
        """Rewrite the layer's own line (a new one at the bottom the first time)."""
        if short not in self.rows:
            self.rows[short] = len(self.rows)
            self.out.write(text + "\n")
        else:
            up = len(self.rows) - self.rows[short]
            self.out.write(f"\x1b[{up}A\r\x1b[2K{text}\x1b[{up}B\r")
        self.out.flush()
        self.drawn = time.monotonic()


def bar(done: int, total: int) -> str:
    """`[=====>     ]  1.2MB/3.4MB`"""
    filled = int(WIDTH * done / total) if total > 0 else WIDTH
    arrow = "=" * max(filled - 1, 0) + (">" if filled else "")
    return f"[{arrow.ljust(WIDTH)}] {size(done):>8}/{size(total)}"


def size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.1f}{unit}" if unit != "B" else f"{int(n)}B"
        n /= 1000
    return f"{n}"
