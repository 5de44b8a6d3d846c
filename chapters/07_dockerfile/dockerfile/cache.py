"""The build cache: a step's result, found again by a key chained from its parent's.

    key(FROM)  = H("FROM", base image id)
    key(step)  = H(key(previous step), the instruction after expansion,
                   its inputs: the content of COPY/ADD sources, the ARG
                   values a RUN sees, the stage a COPY --from reads)

Because each key includes its parent's, a change anywhere (a new base
image, an edited instruction, one byte of one copied file) changes that
step's key and every key after it: those steps run again, the ones before
are reused. The cache stores, per key, the image state after the step
(config and layer descriptors) as one small JSON file, written atomically,
so a build killed halfway leaves either a whole entry or none. The layers
themselves live in the image store; an entry whose layer blobs were
garbage-collected since is simply a miss.
"""

import hashlib
import json
import os
from typing import Any

from ..blobs import BlobStore


# --8<-- [start:chain]
def chain(parent: str, *inputs: Any) -> str:
    """The key of a step: a digest of its parent's key and its own inputs."""
    data = json.dumps([parent, *inputs], sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(data.encode()).hexdigest()
# --8<-- [end:chain]


class Cache:
    """Step results by key, under ROOT/build-cache/."""

    def __init__(self, store: BlobStore) -> None:
        self.store = store
        self.directory = os.path.join(store.root, "build-cache")

    def path(self, key: str) -> str:
        return os.path.join(self.directory, key.removeprefix("sha256:") + ".json")

    def get(self, key: str) -> dict | None:
        """The state saved under `key`, if it is whole and its layers still exist."""
        try:
            with open(self.path(key), "rb") as f:
                entry = json.load(f)
        except (OSError, ValueError):
            return None
        if not all(self.store.has_blob(layer["digest"]) for layer in entry.get("layers", [])):
            return None
        return entry

    def put(self, key: str, entry: dict) -> None:
        """Save the state after a step (temp file, fsync, rename)."""
        os.makedirs(self.directory, exist_ok=True)
        self.store.write_file(self.path(key), json.dumps(entry, sort_keys=True).encode())

    def digests_path(self, context: str) -> str:
        return os.path.join(self.directory, "context-" + hashlib.sha256(context.encode()).hexdigest() + ".json")

    def known_digests(self, context: str) -> dict[str, str]:
        """The content digests of the context's files at its last build (see context.py)."""
        try:
            with open(self.digests_path(context), "rb") as f:
                known = json.load(f)
        except (OSError, ValueError):
            return {}
        if not isinstance(known, dict):
            return {}
        return {k: v for k, v in known.items() if isinstance(v, str) and len(v) == 64}

    def keep_digests(self, context: str, known: dict[str, str], seen: dict[str, str]) -> None:
        """Remember this build's digests for the next build of the context (if they changed)."""
        if seen != known:
            os.makedirs(self.directory, exist_ok=True)
            self.store.write_file(self.digests_path(context), json.dumps(seen, sort_keys=True).encode())
