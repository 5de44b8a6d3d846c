# chapter: final
"""The monitor's one loop: every byte that goes in or out of a detached container.

What a detached container prints has two readers: the json-file log (the
past, for `logs`) and whoever is attached right now (the present, for
`attach`). What it reads comes from any attached client (-i). The monitor
moves all of it in one loop over one selector:

    PID 1's stdout and stderr pipes, or the pty master (-t) ──▶ the log, and every client
    the attach socket ──▶ a new client
    a client's frames ──▶ PID 1's stdin pipe (-i), or the pty master (-t -i);
                          a window size ──▶ the pty (TIOCSWINSZ)

One loop rather than a thread per stream: no locks around the log or the
client list, and the order of events is the order they are handled in.

The monitor owns the pty master, not the CLI: the terminal has to outlive
every client (a detached `run -dit` has none, and any number may come and
go), so only the process that lives as long as the container can hold it.

Nobody slow holds the container up. A client that stops reading gets its
frames queued, up to OUTBOX_LIMIT bytes, and is dropped beyond that (it may
attach again; `logs` has what it missed). Keys for a PID 1 that does not
read its stdin are queued up to INBOX_LIMIT, and while that queue is full
the loop stops reading clients: their keys wait, the container's output
does not. Protocol and framing: attach_protocol.py.
"""

import fcntl
import os
import selectors
import socket
import termios
import threading

from . import attach_protocol as protocol

OUTBOX_LIMIT = 1 << 20   # bytes queued for one client before it is dropped
INBOX_LIMIT = 1 << 16    # bytes of keys queued for PID 1 before clients are read no more


class Client:
    """One attached connection: frames half-read from it, frames waiting to go to it.

    `start -a` is the container's foreground (`waited_for`): the container waits for it as it
    would for a terminal, rather than lose output; its input's end is the end of PID 1's stdin,
    as with Docker's StdinOnce."""

    def __init__(self, sock: socket.socket, waited_for: bool = False) -> None:
        sock.setblocking(False)
        self.sock, self.frames, self.outbox = sock, protocol.Frames(), bytearray()
        self.waited_for = waited_for


class Streams:
    """A container's output, input and attach socket, served by one loop on a thread of its own."""

    def __init__(self, path: str, log, outputs: dict[int, str], stdin: int | None = None,
                 first: socket.socket | None = None) -> None:
        self.path, self.log = path, log
        self.selector = selectors.DefaultSelector()
        self.listener = listen(path)
        self.selector.register(self.listener, selectors.EVENT_READ, self.accept)
        self.clients: dict[socket.socket, Client] = {}
        self.outputs = dict(outputs)             # fd -> "stdout" or "stderr"
        self.input = stdin                       # where keys go: PID 1's stdin pipe (-i) or the pty (-t -i)
        self.inbox = bytearray()
        self.terminal: int | None = None         # the pty master (a copy): window sizes go there
        self.thread: threading.Thread | None = None
        self.reading = False                     # whether the outputs are watched (not while `start -a` lags)
        self.end_input = False                   # close PID 1's stdin once the inbox is written
        if first:
            self.accept_client(Client(first, waited_for=True))

    def start(self, master: int | None = None, interactive: bool = False) -> None:
        """Serve the outputs (and the pty `master`, which the loop now owns) until they all end."""
        if self.thread:
            return
        if master is not None:
            self.outputs[master] = "stdout"
            self.terminal = os.dup(master)  # its own fd: the selector watches each fd for one thing
            os.set_blocking(self.terminal, False)
            self.input = self.terminal if interactive else None
        self.watch_outputs()
        if self.input is not None and self.input != self.terminal:
            os.set_blocking(self.input, False)
        self.thread = threading.Thread(target=self.loop, name="streams")
        self.thread.start()

    def loop(self) -> None:
        while self.outputs:
            for key, events in self.selector.select():
                if self.selector.get_map().get(key.fd) is key:  # not dropped (or changed) by an earlier event
                    key.data(key.fileobj, events)

    # --- what the container prints -----------------------------------------------

    def output(self, fd: int, _events: int) -> None:
        """A chunk of output to the log and to every client; its end, when every writer has gone."""
        stream = self.outputs[fd]
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""  # EIO: a pty master whose slave every process has closed
        if not data:
            self.selector.unregister(fd)
            os.close(fd)
            del self.outputs[fd]
            if self.log and stream not in self.outputs.values():
                self.log.end(stream)
            return
        if self.log:
            self.log.write(data, stream)
        self.send_all(protocol.STDOUT if stream == "stdout" else protocol.STDERR, data)

    def send_all(self, stream: int, data: bytes) -> None:
        for client in list(self.clients.values()):
            self.send(client, protocol.frame(stream, data))
        self.watch_outputs()

    def send(self, client: Client, data: bytes) -> None:
        """Queue `data` for `client`; a client too far behind is dropped, unless the container waits for it."""
        client.outbox += data
        if len(client.outbox) > OUTBOX_LIMIT and not client.waited_for:
            self.drop(client)
        else:
            self.flush(client)

    def watch_outputs(self) -> None:
        """Read the container's output, except while its `start -a` client is too far behind."""
        lagging = any(c.waited_for and len(c.outbox) > OUTBOX_LIMIT for c in self.clients.values())
        if lagging == self.reading:
            for fd in self.outputs:
                if lagging:
                    self.selector.unregister(fd)
                else:
                    self.selector.register(fd, selectors.EVENT_READ, self.output)
            self.reading = not lagging

    def flush(self, client: Client) -> None:
        try:
            sent = client.sock.send(client.outbox)
        except BlockingIOError:
            sent = 0
        except OSError:
            return self.drop(client)
        del client.outbox[:sent]
        self.watch(client)
        if client.waited_for and not self.reading and self.thread:
            self.watch_outputs()

    # --- clients ----------------------------------------------------------------------

    def accept(self, listener: socket.socket, _events: int) -> None:
        try:
            sock, _ = listener.accept()
        except OSError:
            return  # out of descriptors, say: that client is refused, the container goes on
        self.accept_client(Client(sock))

    def accept_client(self, client: Client) -> None:
        self.clients[client.sock] = client
        self.watch(client)

    def from_client(self, sock: socket.socket, events: int) -> None:
        client = self.clients[sock]
        if events & selectors.EVENT_WRITE:
            self.flush(client)
        if events & selectors.EVENT_READ and sock in self.clients:
            try:
                data = sock.recv(65536)
                frames = client.frames.feed(data) if data else None
            except (OSError, ValueError):
                frames = None
            if frames is None:
                return self.drop(client)  # it went (or spoke nonsense): the container goes on
            for stream, payload in frames:
                self.take(client, stream, payload)

    def take(self, client: Client, stream: int, payload: bytes) -> None:
        """A client's keys for PID 1 (none: its input ended), or its window size for the pty."""
        if stream == protocol.STDIN and self.input is not None:
            self.inbox += payload
            self.end_input = self.end_input or (not payload and client.waited_for and self.input != self.terminal)
            self.write_input()
        elif stream == protocol.RESIZE and self.terminal is not None and len(payload) == 8:
            try:
                fcntl.ioctl(self.terminal, termios.TIOCSWINSZ, payload)  # the kernel sends SIGWINCH inside
            except OSError:
                pass  # the pty is going away

    def write_input(self, *_: object) -> None:
        """Pass queued keys on as far as PID 1 reads them; a stdin closed inside drops them."""
        try:
            del self.inbox[:os.write(self.input, self.inbox)]
        except BlockingIOError:
            pass
        except OSError:  # EPIPE: nobody reads the pipe now; EIO: the pty is gone
            self.inbox.clear()
        self.watch_input()
        if self.end_input and not self.inbox:
            os.close(self.input)  # PID 1 reads its end of file
            self.input, self.end_input = None, False

    def watch_input(self) -> None:
        registered = self.input in self.selector.get_map()
        if self.inbox and not registered:
            self.selector.register(self.input, selectors.EVENT_WRITE, self.write_input)
        elif not self.inbox and registered:
            self.selector.unregister(self.input)
        for client in list(self.clients.values()):
            self.watch(client)  # a full inbox stops reading clients; an emptied one starts again

    def watch(self, client: Client) -> None:
        """Listen to `client` unless keys are backed up; watch for room while frames wait for it."""
        events = (selectors.EVENT_READ if len(self.inbox) < INBOX_LIMIT else 0) \
            | (selectors.EVENT_WRITE if client.outbox else 0)
        registered = client.sock in self.selector.get_map()
        if events and registered:
            self.selector.modify(client.sock, events, self.from_client)
        elif events:
            self.selector.register(client.sock, events, self.from_client)
        elif registered:
            self.selector.unregister(client.sock)

    def drop(self, client: Client) -> None:
        if client.sock in self.selector.get_map():
            self.selector.unregister(client.sock)
        self.clients.pop(client.sock, None)
        client.sock.close()
        if client.waited_for and not self.reading and self.thread and self.thread.is_alive():
            self.watch_outputs()  # it went: nobody holds the output up now

    # --- the end ----------------------------------------------------------------------

    def finish(self, exit_code: int) -> None:
        """After PID 1 exited: let the output run out, tell every client the exit status, close all."""
        if not self.thread:  # PID 1 never got that far: still read what it wrote
            self.start()
        self.thread.join()
        for client in list(self.clients.values()):
            client.outbox += protocol.frame(protocol.EXIT, str(exit_code).encode())
            try:
                client.sock.settimeout(None if client.waited_for else 5)  # a last word: others may miss it
                client.sock.sendall(client.outbox)
            except OSError:
                pass
            self.drop(client)
        self.close()

    def close(self) -> None:
        self.selector.close()
        self.listener.close()
        for fd in {*self.outputs, self.terminal, self.input} - {None}:
            os.close(fd)
        self.outputs, self.terminal, self.input = {}, None, None
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def listen(path: str) -> socket.socket:
    """The attach socket at `path`, for root alone (its run dir is root's, 0700, too)."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    with protocol.short_path(path) as short:
        try:
            os.unlink(short)  # a monitor killed before its end left it: the lock is ours now
        except FileNotFoundError:
            pass
        listener.bind(short)
        os.chmod(short, 0o600)
    listener.listen()
    return listener
