"""Talking HTTP to a registry: plain or TLS, credentials, tokens, redirects.

A client does not know in advance how a registry wants to be spoken to. It
tries, and the 401 answer says how to authenticate:

    GET /v2/library/busybox/manifests/latest
    401  WWW-Authenticate: Bearer realm="https://auth.docker.io/token",
                           service="registry.docker.io",scope="repository:library/busybox:pull"
    GET https://auth.docker.io/token?service=...&scope=...   (with Basic credentials, if any)
    200  {"token": "..."}
    GET /v2/library/busybox/manifests/latest   Authorization: Bearer ...

Blob downloads are often redirected to a CDN on another host; the
credentials stay behind, because that host is not the registry.
"""

import base64
import http.client
import ipaddress
import json
import socket
import ssl
import threading
import urllib.parse

from . import auth
from ..errors import DockyardError

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
TIMEOUT = 60
BLOCK = 1 << 20


class RegistryError(DockyardError):
    """A registry could not be reached, or refused or garbled an answer."""


class Unauthorized(RegistryError):
    """The registry (or its token service) did not accept who we said we are."""


def is_loopback(host: str) -> bool:
    """localhost and 127.0.0.0/8 speak plain HTTP, as Docker allows."""
    name = host[1:host.find("]")] if host.startswith("[") else host.split(":")[0] if host.count(":") == 1 else host
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class Session:
    """HTTP requests to one registry, authenticated as its 401 answers ask."""

    def __init__(self, registry: str, credentials: tuple[str, str] | None = None,
                 insecure: bool = False) -> None:
        self.registry = registry
        self.host = DOCKER_HUB_API if registry == DOCKER_HUB else registry
        self.scheme = "http" if insecure or is_loopback(self.host) else "https"
        self.credentials = credentials
        self.authorization: dict[str, str] = {}  # scope -> Authorization header value
        self.lock, self.local = threading.Lock(), threading.local()

    # --- connections -----------------------------------------------------------------

    def connect(self, scheme: str, host: str) -> http.client.HTTPConnection:
        """A keep-alive connection of this thread to `host`, made on first use."""
        cache = self.local.__dict__.setdefault("connections", {})
        key = (scheme, host)
        if key not in cache:
            if scheme == "https":
                cache[key] = http.client.HTTPSConnection(host, timeout=TIMEOUT, blocksize=BLOCK,
                                                         context=ssl.create_default_context())
            else:
                cache[key] = http.client.HTTPConnection(host, timeout=TIMEOUT, blocksize=BLOCK)
        return cache[key]

    def drop(self, scheme: str, host: str) -> None:
        connection = self.local.__dict__.get("connections", {}).pop((scheme, host), None)
        if connection:
            connection.close()

    # --- requests ----------------------------------------------------------------------

    def request(self, method: str, path: str, scope: str, headers: dict[str, str] | None = None,
                body: object = None, redirects: int = 5) -> http.client.HTTPResponse:
        """Send a request (path or full URL), authenticating once on a 401."""
        response = self.send(method, path, scope, headers or {}, body, redirects)
        if response.status == 401 and (body is None or isinstance(body, bytes)):
            challenge = response.getheader("WWW-Authenticate", "")
            response.read()
            self.authenticate(challenge, scope)
            response = self.send(method, path, scope, headers or {}, body, redirects)
        if response.status == 401:
            response.read()
            what = scope.split(":")[1] if scope.count(":") >= 2 else "the API"
            raise Unauthorized(f"{self.registry} refused access to {what}",
                                hint=f"log in first (login {self.registry}), or check the name and your rights")
        return response

    def send(self, method: str, url: str, scope: str, headers: dict[str, str], body: object,
             redirects: int) -> http.client.HTTPResponse:
        """One request, following redirects; credentials go to the registry's own host only."""
        scheme, host, path = self.scheme, self.host, url
        for _ in range(redirects + 1):
            if "://" in path:
                parts = urllib.parse.urlsplit(path)
                scheme, host, path = parts.scheme, parts.netloc, parts.path + (f"?{parts.query}" if parts.query else "")
            sent = dict(headers)
            if (scheme, host) == (self.scheme, self.host) and scope in self.authorization:
                sent["Authorization"] = self.authorization[scope]
            response = self.exchange(scheme, host, method, path, sent, body)
            if response.status not in (301, 302, 303, 307, 308) or method not in ("GET", "HEAD"):
                return response
            location = response.getheader("Location", "")
            response.read()
            path = location if "://" in location else f"{scheme}://{host}{location}"
        raise RegistryError(f"{self.registry} redirected too many times", hint="the registry is misconfigured")

    def exchange(self, scheme: str, host: str, method: str, path: str, headers: dict[str, str],
                 body: object) -> http.client.HTTPResponse:
        """Send on the thread's connection; a stale keep-alive connection is retried once."""
        for attempt in (1, 2):
            connection = self.connect(scheme, host)
            try:
                connection.request(method, path, body=body, headers=headers)
                return connection.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as err:
                self.drop(scheme, host)
                if attempt == 2 or not (body is None or isinstance(body, bytes)):
                    raise unreachable(host, err) from err
            except (OSError, http.client.HTTPException) as err:
                self.drop(scheme, host)
                raise unreachable(host, err) from err
        raise AssertionError("unreachable")

    # --- authentication -------------------------------------------------------------------

    # --8<-- [start:authenticate]
    def authenticate(self, challenge: str, scope: str) -> None:
        """Answer a 401's challenge: Basic credentials, or a token from the realm."""
        scheme, params = auth.parse_challenge(challenge)
        if scheme == "basic" and self.credentials:
            value = "Basic " + base64.b64encode(":".join(self.credentials).encode()).decode()
        elif scheme == "bearer" and params.get("realm"):
            value = "Bearer " + self.fetch_token(params, params.get("scope") or scope)
        else:
            return
        with self.lock:
            self.authorization[scope] = value
    # --8<-- [end:authenticate]

    def fetch_token(self, params: dict[str, str], scope: str) -> str:
        """GET the realm for a token for `scope`, with our credentials if we have them."""
        query = {"service": params.get("service", "")}
        if scope:
            query["scope"] = scope
        if self.credentials:
            query["account"] = self.credentials[0]
        realm = urllib.parse.urlsplit(params["realm"])
        if realm.scheme not in ("http", "https"):
            raise RegistryError(f"{self.registry} sent a token realm that is not HTTP", hint="the registry is misconfigured")
        headers = {}
        if self.credentials:
            headers["Authorization"] = "Basic " + base64.b64encode(":".join(self.credentials).encode()).decode()
        path = realm.path + "?" + urllib.parse.urlencode(query)
        response = self.exchange(realm.scheme, realm.netloc, "GET", path, headers, None)
        data = response.read(1 << 20)
        if response.status != 200:
            raise Unauthorized(f"the token service of {self.registry} refused: HTTP {response.status}",
                                hint=f"check your user name and password (login {self.registry})")
        try:
            answer = json.loads(data)
            return answer.get("token") or answer["access_token"]
        except (ValueError, KeyError, AttributeError):
            raise RegistryError(f"the token service of {self.registry} answered something that is not a token",
                                hint="the registry is misconfigured") from None


def unreachable(host: str, err: Exception) -> RegistryError:
    """A network failure, phrased for the user."""
    if isinstance(err, ssl.SSLError):
        return RegistryError(f"cannot talk TLS to {host}: {err.reason or err}",
                             hint="if the registry speaks plain HTTP, add --insecure-registry")
    if isinstance(err, socket.gaierror):
        return RegistryError(f"cannot resolve {host}", hint="check the registry's name and your network")
    return RegistryError(f"cannot reach registry {host}: {err}",
                         hint="check the address and that the registry is running")
