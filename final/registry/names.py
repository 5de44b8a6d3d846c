# chapter: 06
"""Names, tags and digests: the grammar that keeps a registry's paths safe.

A repository name such as `library/busybox` becomes a directory on the
server and a URL path on the client, so it is checked against the
distribution spec's grammar before it is used anywhere. Every pattern is
matched in full (`fullmatch`, never `match`: `$` would let a trailing
newline through) and in ASCII only (`\\d` would otherwise accept Arabic
digits). `../x`, `a//b` and `A` are not names; nothing else needs to guard
against them.

A user's reference follows Docker's habits on top of that grammar:
`busybox` means `docker.io/library/busybox:latest`.
"""

import re
from dataclasses import dataclass

from ..errors import DockyardError

# The OCI distribution spec v1.1, "Pulling manifests".
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*", re.ASCII)
TAG = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}", re.ASCII)
# The OCI image spec, "Digests"; we compute only the two registered algorithms.
DIGEST = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+", re.ASCII)
ENCODED = {"sha256": re.compile(r"[a-f0-9]{64}", re.ASCII), "sha512": re.compile(r"[a-f0-9]{128}", re.ASCII)}
DOMAIN = re.compile(r"(?:localhost|[a-zA-Z0-9.-]*[.:][a-zA-Z0-9.:-]*|\[[0-9a-fA-F:]+\](?::\d+)?)", re.ASCII)
MAX_NAME = 255

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"


def is_name(name: str) -> bool:
    """True if `name` is a valid repository name."""
    return len(name) <= MAX_NAME and NAME.fullmatch(name) is not None


def is_tag(tag: str) -> bool:
    """True if `tag` is a valid tag."""
    return TAG.fullmatch(tag) is not None


def is_digest(digest: str) -> bool:
    """True if `digest` is well formed and uses an algorithm we can compute."""
    if DIGEST.fullmatch(digest) is None:
        return False
    algorithm, _, encoded = digest.partition(":")
    pattern = ENCODED.get(algorithm)
    return pattern is not None and pattern.fullmatch(encoded) is not None


@dataclass(frozen=True)
class Reference:
    """A parsed image reference: where it lives and which version."""
    registry: str          # as the user wrote it: docker.io, localhost:5000
    name: str              # the repository: library/busybox
    tag: str | None = None
    digest: str | None = None

    @property
    def host(self) -> str:
        """The host:port to talk HTTP to (Docker Hub's API is not docker.io)."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def version(self) -> str:
        """What to ask the registry for: the digest if pinned, else the tag."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        text = f"{self.registry}/{self.name}"
        if self.tag:
            text += f":{self.tag}"
        return text + (f"@{self.digest}" if self.digest else "")


def parse_reference(text: str, default_tag: str | None = "latest") -> Reference:
    """Parse `[registry/]name[:tag][@digest]` with Docker's defaults."""
    rest, _, digest = text.partition("@")
    registry, path = split_registry(rest)
    path, tag = split_tag(path)
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    check(text, is_name(path), "its name is not a valid repository name")
    check(text, tag is None or is_tag(tag), "its tag is not a valid tag")
    check(text, not digest or is_digest(digest), "its digest is not sha256:<64 hex digits>")
    if tag is None and not digest:
        tag = default_tag
    return Reference(registry, path, tag, digest or None)


def split_registry(text: str) -> tuple[str, str]:
    """Split off the registry: the first component, if it looks like a host."""
    first, slash, rest = text.partition("/")
    if slash and DOMAIN.fullmatch(first):
        return ("docker.io" if first == "index.docker.io" else first), rest
    return DOCKER_HUB, text


def split_tag(path: str) -> tuple[str, str | None]:
    """Split `name:tag`; a colon before the last slash would be a port, not a tag."""
    name, colon, tag = path.rpartition(":")
    if not colon or "/" in tag:
        return path, None
    return name, tag


def check(text: str, ok: bool, why: str) -> None:
    """Raise a user error about reference `text` unless `ok`."""
    if not ok:
        raise DockyardError(f"invalid reference {text!r}: {why}",
                            hint="write it as [REGISTRY/]NAME[:TAG][@sha256:DIGEST], in lower case")
