"""A registry server: the OCI distribution API over the standard library's HTTP.

`registry serve` is a ThreadingHTTPServer (one thread per connection) whose
handler turns each request into one call of an endpoint in `api.py`:

    request ─▶ route (method + path regex) ─▶ check the names in it
            ─▶ authorize (Basic or Bearer) ─▶ endpoint ─▶ JSON error or answer
            ─▶ one log line

Bodies stream in (Content-Length or chunked, as Go clients such as skopeo
send) and blobs stream out (sendfile(2) when there is no TLS), so a 1 GB
layer never sits in memory. Any failure becomes one of the spec's error
codes; an unexpected one becomes a 500 and a log line, never a dead server.
"""

import os
import ssl
import sys
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import api, auth
from .spec import ApiError
from .storage import CHUNK, Storage


class Registry:
    """What every request thread shares: the storage and the access rules."""

    def __init__(self, storage: Storage, passwords: auth.Passwords | None = None,
                 tokens: auth.Tokens | None = None, anonymous_pull: bool = False) -> None:
        self.storage, self.passwords, self.tokens = storage, passwords, tokens
        self.anonymous_pull = anonymous_pull

    def grant(self, user: str, requested: list[str]) -> list[dict]:
        """What the token endpoint grants: users everything, anonymous at most pull."""
        access = []
        # A client may send several scopes in one parameter, space-separated, as challenges list them.
        for scope in (word for value in requested for word in value.split()):
            parsed = auth.parse_scope(scope)
            if not parsed:
                continue
            kind, name, actions = parsed
            allowed = set(auth.ACTIONS) if user else ({"pull"} if self.anonymous_pull else set())
            if kind == "registry" and name == "catalog":
                allowed = {"*"} if user else set()
            if granted := sorted(actions & allowed):
                access.append({"type": kind, "name": name, "actions": granted})
        return access


class Handler(BaseHTTPRequestHandler):
    """One HTTP connection; each request goes through dispatch()."""

    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse connections
    # An answer leaves in two writes, headers then body. With Nagle's algorithm on, the
    # body waits for the client to ACK the headers, and clients delay ACKs by up to 40 ms:
    # every manifest and small blob would take 40 ms. TCP_NODELAY sends each write at once.
    disable_nagle_algorithm = True
    server_version = "dockyard-registry/1"
    registry: Registry  # set on the subclass that serve() makes

    def do_GET(self) -> None: self.dispatch()
    def do_HEAD(self) -> None: self.dispatch()
    def do_PUT(self) -> None: self.dispatch()
    def do_POST(self) -> None: self.dispatch()
    def do_PATCH(self) -> None: self.dispatch()
    def do_DELETE(self) -> None: self.dispatch()

    def dispatch(self) -> None:
        """Route, authorize, run the endpoint, and answer errors in the spec's JSON."""
        self.started, self.user, self.status, self.sent = time.monotonic(), "-", 0, 0
        self.body_read = False
        url = urllib.parse.urlsplit(self.path)
        self.query = urllib.parse.parse_qs(url.query)
        try:
            endpoint, args = api.route(self.command, url.path, self.registry.tokens)
            endpoint(self, *args)
        except ApiError as err:
            self.drain()
            self.fail(err)
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception as err:  # a bug of ours (or a full disk): answer 500, log it, keep serving
            print(f"registry: internal error: {type(err).__name__}: {err}", file=sys.stderr)
            if self.status:  # the answer had begun: all we can do is hang up
                self.close_connection = True
            else:
                self.fail(ApiError("UNKNOWN", "internal error", 500))
        if not self.body_read and self.has_body():
            self.close_connection = True  # the unread body would be read as the next request
        self.log_line()

    def fail(self, err: ApiError) -> None:
        headers = dict(err.headers)
        if err.status == 401:
            headers["WWW-Authenticate"] = self.challenge(getattr(err, "scope", None))
        try:
            self.reply(err.status, err.body(), headers, "application/json")
        except (ConnectionError, TimeoutError):
            self.close_connection = True

    # --- authorization ----------------------------------------------------------------

    def authorize(self, kind: str, name: str, action: str, also: tuple[str, ...] = ()) -> None:
        """Raise UNAUTHORIZED unless this request may do `action` on `kind:name`.

        The challenge names the scope a token needs (none for the base check), plus
        `also`: the scopes that would let the client do better (pull from a mount's source).
        """
        if not self.may(kind, name, action):
            err = ApiError("UNAUTHORIZED", "authentication required")
            scopes = [auth.format_scope(kind, name, [action] if action != "push" else ["pull", "push"])] if kind else []
            err.scope = " ".join([*scopes, *also]) or None
            raise err

    def may(self, kind: str, name: str, action: str) -> bool:
        """True if this request's credentials allow `action` on `kind:name`."""
        registry, header = self.registry, self.headers.get("Authorization", "")
        if registry.tokens:
            claims = registry.tokens.check(header)
            if claims:
                self.user = claims.get("sub") or "-"
            return bool(claims) and (not name or auth.allows(claims, kind, name, action))
        if registry.passwords:
            user = registry.passwords.check_basic(header)
            self.user = user or "-"
            return user is not None
        return True

    def challenge(self, scope: str | None) -> str:
        tokens = self.registry.tokens
        return tokens.challenge(scope) if tokens else 'Basic realm="dockyard-registry"'

    # --- bodies -----------------------------------------------------------------------

    def has_body(self) -> bool:
        length = self.headers.get("Content-Length", "")
        return (length.isdigit() and int(length) > 0) or self.is_chunked()

    def is_chunked(self) -> bool:
        return "chunked" in self.headers.get("Transfer-Encoding", "").lower()

    def body(self, limit: int | None = None) -> Iterator[bytes]:
        """The request body in pieces; SIZE_INVALID past `limit` bytes."""
        self.body_read = True
        pieces = self.chunked_pieces() if self.is_chunked() else self.sized_pieces()
        total = 0
        for piece in pieces:
            total += len(piece)
            if limit is not None and total > limit:
                self.close_connection = True
                raise ApiError("SIZE_INVALID", f"the body is larger than {limit} bytes", 413)
            yield piece

    def drain(self, most: int = 64 << 20) -> None:
        """Read and drop a small unread body, so the client gets our answer, not a broken pipe."""
        length = self.headers.get("Content-Length", "")
        if not self.body_read and not self.is_chunked() and length.isdigit() and int(length) <= most:
            for _ in self.body():
                pass

    def read_body(self, limit: int) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > limit:
            raise ApiError("SIZE_INVALID", f"the body is larger than {limit} bytes", 413)
        return b"".join(self.body(limit))

    def sized_pieces(self) -> Iterator[bytes]:
        try:
            left = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise ApiError("SIZE_INVALID", "bad Content-Length") from None
        while left > 0:
            piece = self.rfile.read(min(left, CHUNK))
            if not piece:
                raise ConnectionError("the client closed the connection mid-body")
            left -= len(piece)
            yield piece

    def chunked_pieces(self) -> Iterator[bytes]:
        """Decode Transfer-Encoding: chunked (RFC 9112 section 7.1)."""
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                self.close_connection = True
                raise ApiError("BLOB_UPLOAD_INVALID", "bad chunk size in chunked body") from None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return
            while size > 0:
                piece = self.rfile.read(min(size, CHUNK))
                if not piece:
                    raise ConnectionError("the client closed the connection mid-chunk")
                size -= len(piece)
                yield piece
            self.rfile.readline(16)

    # --- answers --------------------------------------------------------------------------

    def reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
              content_type: str | None = None) -> None:
        """Send a whole answer (HEAD gets the headers only)."""
        self.send_response(status)
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        if content_type:
            self.send_header("Content-Type", content_type)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.status = status
        if body and self.command != "HEAD":
            self.wfile.write(body)
            self.sent = len(body)

    def reply_file(self, status: int, path: str, start: int, length: int, headers: dict[str, str]) -> None:
        """Send `length` bytes of a file from `start`, without reading it into memory."""
        with open(path, "rb") as f:  # opened first: a concurrent delete cannot cut the answer
            self.reply(status, b"", {**headers, "Content-Length": str(length)})
            if self.command != "HEAD" and length:
                self.connection.sendfile(f, start, length)  # falls back to send() under TLS
                self.sent = length

    def log_line(self) -> None:
        elapsed = (time.monotonic() - self.started) * 1000
        print(f'{self.client_address[0]} {self.user} "{self.command} {self.path[:200]}" '
              f"{self.status} {self.sent} {elapsed:.1f}ms", file=sys.stderr, flush=True)

    def log_message(self, format: str, *args: object) -> None:
        pass  # dispatch() logs one line per request itself

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Requests too malformed to reach dispatch() (a TLS hello on plain HTTP) get JSON and a log line."""
        self.close_connection = True
        self.started, self.user, self.status, self.sent = time.monotonic(), "-", code, 0
        self.command, self.path = self.command or "-", getattr(self, "path", "-")
        self.request_version = "HTTP/1.1"  # answer a garbled line with a status line, not HTTP/0.9's bare body
        self.fail(ApiError("UNSUPPORTED" if code == 501 else "UNKNOWN", message or "bad request", code))
        self.log_line()


class Server(ThreadingHTTPServer):
    """One thread per connection; a connection that breaks is logged in one line."""

    daemon_threads = True

    def handle_error(self, request: object, client_address: tuple) -> None:
        err = sys.exc_info()[1]
        print(f"{client_address[0]} connection error: {type(err).__name__}: {err}", file=sys.stderr, flush=True)


def serve(addr: str, storage_dir: str, passwords: auth.Passwords | None = None,
          tokens: auth.Tokens | None = None, anonymous_pull: bool = False,
          tls: tuple[str, str] | None = None) -> None:
    """Serve the registry API on `addr` (host:port) until interrupted."""
    host, _, port = addr.rpartition(":")
    handler = type("BoundHandler", (Handler,), {"registry": Registry(
        Storage(storage_dir), passwords, tokens, anonymous_pull)})
    server = Server((host.strip("[]") or "0.0.0.0", int(port)), handler)
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        # The handshake happens in the connection's thread, not in accept(): a slow client stalls no one.
        server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    scheme = "https" if tls else "http"
    print(f"registry: serving on {scheme}://{server.server_address[0]}:{server.server_address[1]}, "
          f"storage {os.path.abspath(storage_dir)}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
