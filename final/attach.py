# chapter: final
"""`attach`: the terminal, or the output, of a container that runs without us.

A detached container's monitor serves its streams on a unix socket in the
container's run dir (attach_server.py is that side, attach_protocol.py the
frames both speak). `attach` connects and relays: what the container prints
from then on comes out here (the past is the log's, for `logs`), and with -i
what we type goes in. Any number of clients may attach at once; leaving one,
or killing it, leaves the container as it was. Ctrl-P Ctrl-Q (or
--detach-keys) detaches: Docker's "read escape sequence", exit status 1, and
the container runs on.

`start -a` and `run -it` from a terminal are Docker's start + attach: the
CLI hands the new monitor one end of a socket pair, its first client from
before PID 1 exists, and relays from the other (start_attached).
"""

import os
import select
import signal
import socket
import sys

from . import config, faults
from .attach_protocol import EXIT, RESIZE, STDERR, STDIN, Frames, frame, short_path, socket_path
from .errors import DockyardError, UsageError

DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"
CTRL_SYMBOLS = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}


# --- detach keys ------------------------------------------------------------------------

def parse_detach_keys(text: str) -> bytes:
    """Docker's --detach-keys: comma-separated, each one character or ctrl-<a-z @ [ \\ ] ^ _>."""
    keys = b""
    for key in text.split(","):
        if len(key) == 1:
            keys += key.encode()
        elif key.startswith("ctrl-") and len(key) == 6 and "a" <= key[5] <= "z":
            keys += bytes([ord(key[5]) - ord("a") + 1])
        elif key.startswith("ctrl-") and len(key) == 6 and key[5] in CTRL_SYMBOLS:
            keys += bytes([CTRL_SYMBOLS[key[5]]])
        else:
            raise UsageError(f"invalid detach keys {text!r}: cannot read {key!r}",
                             hint="give keys separated by commas, each one character or "
                                  "ctrl-<a-z, @, [, \\, ], ^ or _>: --detach-keys ctrl-p,ctrl-q")
    return keys


class DetachKeys:
    """Holds typed keys back while they could still be the start of the detach sequence."""

    def __init__(self, sequence: bytes) -> None:
        self.sequence, self.held = sequence, b""

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """What to pass on to the container, and whether the whole sequence was typed."""
        out = b""
        for byte in data:
            self.held += bytes([byte])
            if self.held == self.sequence:
                return out, True
            if not self.sequence.startswith(self.held):
                out, self.held = out + self.held, b""  # not the sequence after all: the keys go on
        return out, False


# --- the command ------------------------------------------------------------------------

def attach(c, args) -> int | None:
    """The `attach` command: relay until PID 1 exits (its exit status) or we detach (None)."""
    keys = parse_detach_keys(args.detach_keys or DEFAULT_DETACH_KEYS)
    check_attachable(c, args.container)
    tty = bool(c.config.get("tty"))
    interactive = bool(c.config.get("interactive")) and not args.no_stdin
    if tty and interactive and not os.isatty(0):
        raise DockyardError("the input device is not a TTY",
                            hint="the container has a terminal: attach from one, or with --no-stdin")
    conn = connect(c, args.container)
    faults.fault_point("attach-connected")
    return Session(conn, c, interactive, tty, keys, args.sig_proxy == "true" and not tty).run()


def start_attached(c, request, args) -> int:
    """start -a [-i]: run it under a monitor with us as its first client, so nothing it prints is missed."""
    from . import monitor
    keys = parse_detach_keys(args.detach_keys or DEFAULT_DETACH_KEYS)
    if request.tty and request.interactive and not os.isatty(0):
        raise DockyardError("the input device is not a TTY",
                            hint="the container has a terminal: start it from one, or without -i")
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        monitor_pid = monitor.spawn(request, client=theirs)  # it waits for us; our end of input ends PID 1's
    finally:
        theirs.close()
    exit_code = Session(ours, c, request.interactive, request.tty, keys, sig_proxy=True).run()  # as a foreground run
    if exit_code is None:
        return 0  # detached: the container runs on (Docker's start says nothing)
    if request.restart == "no":
        os.waitpid(monitor_pid, 0)  # as a foreground run: when we return, the container is all done
    return exit_code  # (with a restart policy its monitor goes on: we followed the first run, as Docker's)


def check_attachable(c, text: str) -> None:
    """Only a running container has streams to attach to: Docker's refusals otherwise."""
    status = c.status
    if status == "paused":
        raise DockyardError(f"you cannot attach to a paused container ({text}), unpause it first",
                            hint=f"unpause {text}")
    if status == "restarting":
        raise DockyardError(f"you cannot attach to a restarting container ({text}), wait until it is running",
                            hint=f"its restart policy runs it again shortly: attach {text} then")
    if status != "running":
        raise DockyardError(f"you cannot attach to a stopped container ({text}), start it first",
                            hint=f"start -a {text} runs it attached; logs {text} shows what it printed")


def connect(c, text: str) -> socket.socket:
    """A connection to the container's monitor."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        with short_path(socket_path(c)) as path:
            conn.connect(path)
    except (FileNotFoundError, ConnectionRefusedError) as err:
        conn.close()
        check_attachable(type(c)(c.root, c.id), text)  # it may have stopped meanwhile
        raise DockyardError(f"container {text} has no attach socket: it runs in the foreground of another command",
                            hint="attach works for containers started with run -d or start") from err
    return conn


class Session:
    """One attached client: the container's frames out, our keys in, our signals and window size over."""

    def __init__(self, conn: socket.socket, c, interactive: bool, tty: bool, keys: bytes, sig_proxy: bool) -> None:
        self.conn, self.container, self.frames = conn, c, Frames()
        self.stdin = sys.stdin.fileno() if interactive else None
        self.tty, self.sig_proxy, self.keys = tty, sig_proxy, DetachKeys(keys)

    def run(self) -> int | None:
        """Relay until PID 1 exits (its exit status) or we detach (None)."""
        raw = self.tty and self.stdin is not None and os.isatty(self.stdin)
        saved = termios_raw(self.stdin) if raw else None
        wake_read, wake_write = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        old_wakeup = signal.set_wakeup_fd(wake_write, warn_on_full_buffer=False)
        handled = self.catch_signals()
        try:
            if self.tty:
                self.send_window_size()
            return self.relay(wake_read)
        finally:
            signal.set_wakeup_fd(old_wakeup)
            for sig, old in handled.items():
                signal.signal(sig, old)
            os.close(wake_read)
            os.close(wake_write)
            if saved:
                termios_restore(self.stdin, saved)
            self.conn.close()

    def catch_signals(self) -> dict[int, object]:
        """Route the signals we act on through the wakeup pipe: SIGWINCH (-t), or the proxied ones."""
        wanted = [signal.SIGWINCH] if self.tty else []
        if self.sig_proxy:  # (attach: not with a tty, as Docker's; there Ctrl-C is a key, not a signal)
            wanted += [getattr(signal, name) for name in config.FORWARDED_SIGNALS if name != "SIGWINCH"]
        return {sig: signal.signal(sig, lambda *_: None) for sig in wanted}

    def relay(self, wake: int) -> int | None:
        sources = [self.conn.fileno(), wake, *([self.stdin] if self.stdin is not None else [])]
        while True:
            ready, _, _ = select.select(sources, [], [])
            self.take_signals(wake)  # always first: a resize sent before the keys typed after it
            if self.conn.fileno() in ready:
                exit_code = self.receive()
                if exit_code is not None:
                    return exit_code
            if self.stdin is not None and self.stdin in ready:
                typed = os.read(self.stdin, 65536)
                if not typed:
                    sources.remove(self.stdin)  # our input ended: an empty frame says so (see start_attached)
                    self.send(frame(STDIN, b""))
                    continue
                passed, detached = self.keys.feed(typed)
                if passed:
                    self.send(frame(STDIN, passed))
                if detached:
                    return None

    def receive(self) -> int | None:
        """Write out what the monitor sent; PID 1's exit status once it says so."""
        try:
            data = self.conn.recv(65536)
        except ConnectionResetError:
            data = b""  # it closed with our last frames unread: as good as an end
        if not data:
            return self.lost()
        for stream, payload in self.frames.feed(data):
            if stream == EXIT:
                return int(payload)
            write_all(2 if stream == STDERR else 1, payload)
        return None

    def lost(self) -> int:
        """The monitor hung up without a word: the container's record says how it ended."""
        from . import container
        c = container.Container(self.container.root, self.container.id)
        if c.status in ("exited", "created"):
            return c.state.exit_code or 0
        raise DockyardError(f"lost the connection to container {c.name}'s monitor",
                            hint=f"see ps -a: if it is Dead, its monitor died; rm -f {c.name}")

    def take_signals(self, wake: int) -> None:
        """Act on the signals that arrived: a new window size, or one for the container."""
        try:
            arrived = os.read(wake, 256)
        except BlockingIOError:
            return
        for signum in arrived:
            if signum == signal.SIGWINCH:
                self.send_window_size()
            else:
                self.container.signal(signum)  # through a pidfd, as kill does

    def send(self, data: bytes) -> None:
        """Send a frame to the monitor; one that has hung up (PID 1 exited) left its last frames to read."""
        try:
            self.conn.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def send_window_size(self) -> None:
        from .terminal import window_size
        size = window_size(self.stdin if self.stdin is not None else sys.stdout.fileno())
        if size:
            self.send(frame(RESIZE, size))


def termios_raw(fd: int) -> list:
    """Put our terminal in raw mode (every key goes through); the old settings, to restore."""
    import termios
    import tty
    saved = termios.tcgetattr(fd)
    tty.setraw(fd, termios.TCSADRAIN)  # not TCSAFLUSH: keys typed while we connected still go through
    return saved


def termios_restore(fd: int, saved: list) -> None:
    import termios
    termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]
