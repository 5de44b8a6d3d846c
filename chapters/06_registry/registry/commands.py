"""The registry chapter's commands: `registry serve|passwd`, `pull`, `push`, `login`, `logout`.

The CLI merges this table into its own. Handlers import their machinery
only when they run, so `python3 -m final run ...` never loads an HTTP stack.
"""

import argparse
import os
import sys

from .. import config
from ..errors import DockyardError, UsageError


# --- registry serve | passwd ----------------------------------------------------------

def add_registry_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="registry_command", metavar="COMMAND", parser_class=type(p))
    serve = sub.add_parser("serve", help="serve the OCI distribution API")
    serve.add_argument("--addr", default="127.0.0.1:5000", metavar="HOST:PORT",
                       help="where to listen (default 127.0.0.1:5000; port 0 picks a free one)")
    serve.add_argument("--storage", default=None, metavar="DIR", help="where blobs live (default ROOT/registry)")
    serve.add_argument("--htpasswd", metavar="FILE", help="require users from this file (see 'registry passwd')")
    serve.add_argument("--token-realm", metavar="URL",
                       help="token auth like Docker Hub: we sign tokens at this URL (e.g. http://127.0.0.1:5000/token)")
    serve.add_argument("--token-service", default="dockyard-registry", metavar="NAME", help="the token audience")
    serve.add_argument("--anonymous-pull", action="store_true", help="with tokens: anyone may pull")
    serve.add_argument("--tls-cert", metavar="FILE", help="serve HTTPS with this certificate (PEM)")
    serve.add_argument("--tls-key", metavar="FILE", help="... and this private key (PEM)")
    passwd = sub.add_parser("passwd", help="add or change a user in a password file (password on stdin)")
    passwd.add_argument("file", metavar="FILE")
    passwd.add_argument("user", metavar="USER")


def cmd_registry(args: argparse.Namespace) -> int:
    if args.registry_command == "serve":
        return serve(args)
    if args.registry_command == "passwd":
        return set_password(args.file, args.user, sys.stdin.readline().rstrip("\n"))
    raise UsageError("registry needs a command", hint="registry serve, or registry passwd FILE USER")


def serve(args: argparse.Namespace) -> int:
    from . import auth, server
    if bool(args.tls_cert) != bool(args.tls_key):
        raise UsageError("--tls-cert and --tls-key go together", hint="give both, or neither")
    if args.token_realm and not args.htpasswd and not args.anonymous_pull:
        raise UsageError("--token-realm needs users or --anonymous-pull", hint="add --htpasswd FILE")
    passwords = auth.Passwords(read_passwords(args.htpasswd)) if args.htpasswd else None
    tokens = auth.Tokens(args.token_realm, args.token_service) if args.token_realm else None
    storage = args.storage or os.path.join(args.root, config.REGISTRY_STORAGE)
    tls = (args.tls_cert, args.tls_key) if args.tls_cert else None
    try:
        server.serve(args.addr, storage, passwords, tokens, args.anonymous_pull, tls)
    except OSError as err:
        raise DockyardError(f"cannot serve on {args.addr}: {err.strerror or err}",
                            hint="pick another --addr HOST:PORT, or stop what uses this one") from err
    except KeyboardInterrupt:
        pass
    return 0


def read_passwords(path: str) -> dict[str, str]:
    from . import auth
    try:
        return auth.load_passwords(path)
    except OSError as err:
        raise DockyardError(f"cannot read password file {path}: {err.strerror}",
                            hint="make one with: registry passwd FILE USER") from err


def set_password(path: str, user: str, password: str) -> int:
    """Add `user` to a password file, replacing an old line; the file stays 0600."""
    from . import auth
    from .storage import write_atomically
    if not user or ":" in user or not password:
        raise UsageError("a user name without ':' and a non-empty password are needed",
                         hint="echo PASSWORD | registry passwd FILE USER")
    users = auth.load_passwords(path) if os.path.exists(path) else {}
    users[user] = auth.hash_password(password)
    write_atomically(path, "".join(f"{u}:{h}\n" for u, h in users.items()).encode(), 0o600)
    return 0


# --- pull, push, login, logout ----------------------------------------------------------

def add_transfer_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--insecure-registry", action="store_true",
                   help="plain HTTP to this registry (localhost and 127.0.0.0/8 always are)")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the digest")
    p.add_argument("name", metavar="NAME[:TAG|@DIGEST]",
                   help="the image: busybox, busybox:1.36, 127.0.0.1:5000/team/app@sha256:...")


def add_pull_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--platform", metavar="OS/ARCH[/VARIANT]", help="from a multi-platform image (default: this machine)")
    add_transfer_arguments(p)


def session_for(registry: str, insecure: bool):
    from . import credentials, transport
    return transport.Session(registry, credentials.lookup(registry), insecure)


def cmd_pull(args: argparse.Namespace) -> int:
    from .. import store
    digest = pull_image(store.Store(args.root), args.name, args.insecure_registry, args.platform, args.quiet)
    if args.quiet:
        print(digest)
    return 0


def pull_image(local, name: str, insecure: bool = False, platform: str | None = None,
               quiet: bool = False, out=sys.stdout) -> str:
    """Pull `name` into the store `local`, telling `out` as Docker does; return the manifest digest."""
    from .. import reference
    from ..store import ImageNotFound
    from . import client, progress
    ref = reference.parse(name)
    try:
        before = local.resolve(name).digest
    except ImageNotFound:
        before = None
    if not quiet:
        print(f"{ref.tag or ref.digest}: Pulling from {ref.name}", file=out, flush=True)
    report = client.quiet if quiet else progress.Progress("pull", out)
    digest = client.pull(local, ref, session_for(ref.registry, insecure), platform, report)
    if not quiet:  # Docker's words: nothing new when the name already meant this manifest
        status = "Image is up to date for" if digest == before else "Downloaded newer image for"
        print(f"Digest: {digest}\nStatus: {status} {ref.familiar}", file=out, flush=True)
    return digest


def cmd_push(args: argparse.Namespace) -> int:
    from .. import reference, store
    from . import client, progress
    ref = reference.parse(args.name)
    local = store.Store(args.root)
    image = local.resolve(args.name)
    if not args.quiet:
        print(f"The push refers to repository [{ref.registry}/{ref.name}]", flush=True)
    report = client.quiet if args.quiet else progress.Progress("push")
    digest = client.push(local, image, ref, session_for(ref.registry, args.insecure_registry), report)
    size = len(local.read_blob(digest))
    print(digest if args.quiet else f"{ref.tag or 'latest'}: digest: {digest} size: {size}")
    return 0


def add_login_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-u", "--username", metavar="USER")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p.add_argument("--insecure-registry", action="store_true", help="plain HTTP to this registry")
    p.add_argument("server", nargs="?", default="docker.io", metavar="SERVER")


def registry_of(server: str) -> str:
    """`https://index.docker.io/v1/` or `localhost:5000` -> the registry's name."""
    host = server.split("://", 1)[-1].split("/", 1)[0]
    return "docker.io" if host in ("index.docker.io", "registry-1.docker.io", "docker.io") else host


def cmd_login(args: argparse.Namespace) -> int:
    from . import credentials, transport
    registry = registry_of(args.server)
    user = args.username or input("Username: ")
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else ask_password()
    if not user or not password:
        raise UsageError("a user name and a password are needed", hint="login -u USER --password-stdin SERVER")
    session = transport.Session(registry, (user, password), args.insecure_registry)
    try:
        session.request("GET", "/v2/", "").read()
    except transport.Unauthorized as err:
        raise transport.Unauthorized(f"login to {registry} failed: {err.problem}",
                                      hint="check the user name and the password") from err
    credentials.remember(registry, user, password)
    print("Login Succeeded")
    return 0


def ask_password() -> str:
    import getpass
    if not sys.stdin.isatty():
        raise UsageError("no terminal to ask for the password", hint="pipe it in with --password-stdin")
    return getpass.getpass("Password: ")


def add_logout_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("server", nargs="?", default="docker.io", metavar="SERVER")


def cmd_logout(args: argparse.Namespace) -> int:
    from . import credentials
    registry = registry_of(args.server)
    if credentials.forget(registry):
        print(f"Removing login credentials for {registry}")
    else:
        print(f"Not logged in to {registry}")
    return 0


COMMANDS = {
    "registry": ("Serve images to other machines (registry serve)", add_registry_arguments, cmd_registry),
    "pull": ("Download an image from a registry", add_pull_arguments, cmd_pull),
    "push": ("Upload an image to a registry", add_transfer_arguments, cmd_push),
    "login": ("Save credentials for a registry", add_login_arguments, cmd_login),
    "logout": ("Forget the credentials for a registry", add_logout_arguments, cmd_logout),
}
