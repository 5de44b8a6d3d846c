"""Names, tags and digests: the grammar that keeps a registry's paths safe.

A repository name such as `library/busybox` becomes a directory on the
server and a URL path on the client, so it is checked against the
distribution spec's grammar before it is used anywhere. Every pattern is
matched in full (`fullmatch`, never `match`: `$` would let a trailing
newline through) and in ASCII only (`\\d` would otherwise accept Arabic
digits). `../x`, `a//b` and `A` are not names; nothing else needs to guard
against them.

(A user's reference, `busybox` for `docker.io/library/busybox:latest`,
is chapter 5's `reference.py`; this is the server's stricter view.)
"""

import re

# The OCI distribution spec v1.1, "Pulling manifests".
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*", re.ASCII)
TAG = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}", re.ASCII)
# The OCI image spec, "Digests"; we compute only the two registered algorithms.
DIGEST = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+", re.ASCII)
ENCODED = {"sha256": re.compile(r"[a-f0-9]{64}", re.ASCII), "sha512": re.compile(r"[a-f0-9]{128}", re.ASCII)}
MAX_NAME = 255


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
