"""Chapter 5: what an image is: a manifest, a config, and layers, all named by digest.

    manifest  (application/vnd.oci.image.manifest.v1+json)
    ├── config: sha256:c0ff..   the runtime settings (Env, Cmd, User ...) and
    │                           rootfs.diff_ids, the digests of the *uncompressed* layers
    └── layers: [sha256:1a2b.., sha256:3c4d..]   tar archives, usually gzipped,
                                                 bottom first

Each arrow is a digest, the sha256 of the bytes it points to, so the
manifest's own digest pins the whole image: change one byte of one layer and
every digest above it changes. Docker's older "v2 schema 2" format has the
same shape under other media type names; we accept it on input.
"""

import hashlib
import json
import os
import time
from dataclasses import dataclass, field

from .errors import DockyardError

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"

MANIFESTS = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEXES = (OCI_INDEX, DOCKER_LIST)
LAYERS = (OCI_LAYER, OCI_LAYER_GZIP, DOCKER_LAYER_GZIP,
          "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
          "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip")
REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"
MAX_JSON = 4 * 1024 * 1024  # manifests and configs are small; a huge one is an attack


@dataclass
class Image:
    """A resolved image: its manifest (and digest), its config, its names."""
    digest: str
    manifest: dict
    config: dict
    names: list[str] = field(default_factory=list)
    manifest_digest: str | None = None  # the platform manifest's, when `digest` is an index's

    @property
    def id(self) -> str:
        """Docker's IMAGE ID: the config's digest."""
        return self.manifest["config"]["digest"]

    @property
    def layers(self) -> list[dict]:
        return self.manifest["layers"]

    @property
    def diff_ids(self) -> list[str]:
        return self.config["rootfs"]["diff_ids"]

    @property
    def size(self) -> int:
        """What the image's blobs take on disk."""
        return self.manifest["config"]["size"] + sum(layer["size"] for layer in self.layers)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical(document: dict) -> bytes:
    """JSON bytes for a document we create (its digest depends on every byte)."""
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def descriptor(media_type: str, data_digest: str, size: int, **annotations: str) -> dict:
    d = {"mediaType": media_type, "digest": data_digest, "size": size}
    if annotations:
        d["annotations"] = annotations
    return d


def now() -> str:
    """RFC 3339 UTC time, as image configs record it."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def architecture() -> str:
    """This machine's architecture in OCI's words (GOARCH)."""
    machine = os.uname().machine  # what platform.machine() returns, without importing platform
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(machine, machine)


def new_config(base: dict | None = None) -> dict:
    """A config to build on: the base image's, or an empty linux one for this machine."""
    if base is not None:
        return json.loads(json.dumps(base))
    return {"architecture": architecture(), "os": "linux", "config": {},
            "rootfs": {"type": "layers", "diff_ids": []}, "history": []}


def add_layer(config: dict, diff_id: str | None, created_by: str, comment: str = "") -> None:
    """Record a new top layer (or, with diff_id None, an empty one) in `config`."""
    config["created"] = now()
    entry = {"created": config["created"], "created_by": created_by}
    if comment:
        entry["comment"] = comment
    if diff_id is None:
        entry["empty_layer"] = True
    else:
        config["rootfs"]["diff_ids"].append(diff_id)
    config.setdefault("history", []).append(entry)


def new_manifest(config_descriptor: dict, layers: list[dict]) -> dict:
    return {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_descriptor, "layers": layers}


def parse_json(data: bytes, what: str) -> dict:
    """Decode a manifest or config, refusing what is not a JSON object."""
    try:
        document = json.loads(data)
    except ValueError as err:
        raise DockyardError(f"the {what} is not valid JSON: {err}",
                            hint="the image is damaged: remove it and pull or load it again") from err
    if not isinstance(document, dict):
        raise DockyardError(f"the {what} is not a JSON object", hint="the image is damaged")
    return document


def check_manifest(manifest: dict) -> None:
    """Refuse a manifest that we could not run (wrong shape or unknown layer types)."""
    media_type = manifest.get("mediaType", OCI_MANIFEST)
    if media_type in INDEXES:
        if not isinstance(manifest.get("manifests"), list):
            raise DockyardError("the image index lists no manifests", hint="the image is damaged")
        return
    ok = (media_type in MANIFESTS and manifest.get("schemaVersion") == 2
          and isinstance(manifest.get("config"), dict) and isinstance(manifest.get("layers"), list))
    if not ok:
        raise DockyardError(f"unsupported manifest (media type {media_type!r})",
                            hint="Dockyard reads OCI image manifests and Docker v2 schema 2 ones")
    for layer in manifest["layers"]:
        if layer.get("mediaType") not in LAYERS:
            raise DockyardError(f"unsupported layer media type {layer.get('mediaType')!r}",
                                hint="layers must be tar or tar+gzip (zstd is not supported)")


def check_config(config: dict, manifest: dict) -> None:
    """A config must list one diff id per layer of its manifest."""
    diff_ids = config.get("rootfs", {}).get("diff_ids")
    if not isinstance(diff_ids, list) or len(diff_ids) != len(manifest["layers"]):
        raise DockyardError("the image config's diff_ids do not match its layers",
                            hint="the image is damaged: remove it and pull or load it again")
    config.setdefault("config", {})
    if config["config"] is None:
        config["config"] = {}


def pick_platform(index: dict) -> dict:
    """From a multi-platform index, the manifest for this machine (linux/ARCH)."""
    for entry in index["manifests"]:
        p = entry.get("platform", {})
        if p.get("os", "linux") == "linux" and p.get("architecture", architecture()) == architecture():
            return entry
    raise DockyardError(f"the image has no variant for linux/{architecture()}",
                        hint="choose an image built for this machine's architecture")
