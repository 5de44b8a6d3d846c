# chapter: 06
"""The registry chapter's commands: `registry serve|passwd`, `pull`, `push`, `login`, `logout`.

The CLI merges this table into its own. Handlers import their machinery
only when they run, so `python -m final run ...` never loads an HTTP stack.
"""

import argparse
import os
import sys

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
    storage = args.storage or os.path.join(args.root, "registry")
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


COMMANDS = {
    "registry": ("Serve images to other machines (registry serve)", add_registry_arguments, cmd_registry),
}
