"""Image references: what `busybox`, `alpine:3.20` and `host:5000/app@sha256:...` mean.

Docker's grammar is `[REGISTRY/]PATH[:TAG][@DIGEST]`. The first component is
a registry only if it looks like a host (it has a `.` or a `:`, or is
`localhost`); otherwise the image is on Docker Hub, `docker.io`, where a
one-component path lives under `library/`. A reference with neither tag nor
digest means `:latest`. So `busybox` is `docker.io/library/busybox:latest`,
and the short ("familiar") form is what we show and store as the name.
"""

import re
from dataclasses import dataclass

from .errors import DockyardError

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
PATH = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*", re.ASCII)
TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}", re.ASCII)
DIGEST = re.compile(r"sha256:[a-f0-9]{64}", re.ASCII)
REGISTRY = re.compile(r"localhost(?::\d+)?|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.?[A-Za-z0-9-]*(?::\d+)?"
                      r"|\[[0-9A-Fa-f:]+\](?::\d+)?", re.ASCII)
MAX_NAME = 255
DOCKER_HUB = "docker.io"


@dataclass(frozen=True)
class Reference:
    """A parsed reference: registry, repository path, and a tag and/or digest."""
    registry: str
    name: str
    tag: str | None = None
    digest: str | None = None

    @property
    def repository(self) -> str:
        """The full repository: docker.io/library/busybox."""
        return f"{self.registry}/{self.name}"

    @property
    def familiar_repository(self) -> str:
        """The short repository users type: busybox, user/app, localhost:5000/app."""
        if self.registry != DOCKER_HUB:
            return self.repository
        return self.name.removeprefix("library/") if self.name.count("/") == 1 else self.name

    @property
    def familiar(self) -> str:
        """The short form with tag and digest: busybox:latest."""
        return self.familiar_repository + self._suffix()

    def _suffix(self) -> str:
        return (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    def __str__(self) -> str:
        return self.repository + self._suffix()


def parse(text: str, default_tag: str | None = "latest") -> Reference:
    """Parse `[REGISTRY/]PATH[:TAG][@sha256:HEX]` with Docker's defaults."""
    rest, at, digest = text.partition("@")
    registry, path = split_registry(rest)
    path, tag = split_tag(path)
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    check(text, bool(PATH.fullmatch(path)) and len(f"{registry}/{path}") <= MAX_NAME,
          "the name must be lower-case letters, digits and separators (. _ - /)")
    check(text, tag is None or bool(TAG.fullmatch(tag)), "the tag must be letters, digits, '_', '.' or '-'")
    check(text, not at or bool(DIGEST.fullmatch(digest)), "the digest must be sha256: and 64 hex digits")
    if tag is None and not at:
        tag = default_tag
    return Reference(registry, path, tag, digest or None)


def split_registry(text: str) -> tuple[str, str]:
    """Split off the first component if it names a host."""
    first, slash, rest = text.partition("/")
    if slash and (first == "localhost" or "." in first or ":" in first) and REGISTRY.fullmatch(first):
        return (DOCKER_HUB if first in ("index.docker.io", "registry-1.docker.io") else first), rest
    return DOCKER_HUB, text


def split_tag(path: str) -> tuple[str, str | None]:
    """Split `name:tag`; a colon before the last slash was a port, handled above."""
    name, colon, tag = path.rpartition(":")
    return (name, tag) if colon else (path, None)


def is_digest(text: str) -> bool:
    """True for a full `sha256:<64 hex>` digest."""
    return DIGEST.fullmatch(text) is not None


def check(text: str, ok: bool, why: str) -> None:
    """Raise a user error about the reference `text` unless `ok`."""
    if not ok:
        raise DockyardError(f"invalid reference format {text!r}: {why}",
                            hint="write it as [REGISTRY/]NAME[:TAG][@sha256:DIGEST], e.g. busybox:latest")
