"""Saved registry logins: a Docker-style config.json, readable by its owner only.

    {"auths": {"127.0.0.1:5000": {"auth": "<base64 of user:password>"}}}

base64 is an encoding, not a secret: the file's 0600 mode is what protects
it, so it is created with that mode (never chmod'ed after the fact), and
written atomically so a crash cannot leave half a file.
"""

import base64
import binascii
import json
import os

from .. import config
from ..errors import DockyardError
from .storage import write_atomically

DOCKER_HUB_KEY = "https://index.docker.io/v1/"  # the key Docker uses for Docker Hub


def path() -> str:
    directory = os.environ.get("DOCKYARD_CONFIG") or os.path.expanduser(config.CLIENT_CONFIG_DIR)
    return os.path.join(directory, "config.json")


def key(registry: str) -> str:
    return DOCKER_HUB_KEY if registry == "docker.io" else registry


def load() -> dict:
    try:
        with open(path()) as f:
            document = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        raise DockyardError(f"cannot read {path()}: {err}", hint="fix or remove the file, then log in again") from err
    return document if isinstance(document, dict) else {}


def save(document: dict) -> None:
    os.makedirs(os.path.dirname(path()), mode=0o700, exist_ok=True)
    write_atomically(path(), json.dumps(document, indent=2).encode(), 0o600)


def lookup(registry: str) -> tuple[str, str] | None:
    """The saved (user, password) for a registry, if any."""
    entry = load().get("auths", {}).get(key(registry), {})
    try:
        user, colon, password = base64.b64decode(entry.get("auth", "")).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError, AttributeError):
        return None
    return (user, password) if colon else None


def remember(registry: str, user: str, password: str) -> None:
    document = load()
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    document.setdefault("auths", {})[key(registry)] = {"auth": token}
    save(document)


def forget(registry: str) -> bool:
    """Remove a saved login; False if there was none."""
    document = load()
    if document.get("auths", {}).pop(key(registry), None) is None:
        return False
    save(document)
    return True
