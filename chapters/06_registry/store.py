"""Chapter 5: the image store, an OCI image layout under --root.

    <root>/images/                    an OCI image layout: skopeo and umoci read it
    ├── oci-layout                    {"imageLayoutVersion": "1.0.0"}
    ├── index.json                    a descriptor per name -> manifest digest
    └── blobs/sha256/<hex>            manifests, configs, layers (blobs.py)
    <root>/layers/<hex of diff id>/   each layer unpacked once, shared by all images
    <root>/tmp/                       where every write starts

A name is only an annotation (`org.opencontainers.image.ref.name`, e.g.
`busybox:latest`) on a descriptor in index.json; everything below it is
content-addressed. Tagging, untagging and importing change index.json, under
a lock, by atomic replacement. An image that loses its last name stays as a
nameless ("dangling") entry until `rmi` or `image prune` removes it; a blob
that no entry reaches any more is garbage.
"""

import json
import os
import re
import shutil
from typing import Iterable, Iterator

from . import blobs, config, imagespec, reference
from .blobs import BlobStore, Lock
from .errors import DockyardError
from .imagespec import REF_NAME, Image

LAYOUT = {"imageLayoutVersion": "1.0.0"}


class ImageNotFound(DockyardError):
    def __init__(self, name: str) -> None:
        hint = "see the local images with 'images'; make one with 'import', 'load' or 'pull'"
        if os.geteuid() != 0:  # the usual surprise: root imported it, into root's store
            hint = (f"you are not root, so your images are your own (--root {config.default_root()}), apart from "
                    f"root's ({config.DEFAULT_ROOT}): import or pull it as yourself, or use sudo for root's")
        super().__init__(f"no such image: {name}", hint=hint)


def ref_name(entry: dict) -> str | None:
    return entry.get("annotations", {}).get(REF_NAME)


def familiar(name: str) -> str:
    """The stored form of a name: `busybox` -> `busybox:latest`."""
    return reference.parse(name).familiar


class Store(BlobStore):
    """Images by name and digest, their blobs, and their unpacked layers."""

    def __init__(self, root: str) -> None:
        super().__init__(root)
        self.layers = os.path.join(root, "layers")

    def ensure(self) -> None:
        """Create the OCI layout on first use."""
        if os.path.exists(os.path.join(self.layout, "index.json")):
            return
        super().ensure()
        os.makedirs(self.layers, exist_ok=True)
        self.write_file(os.path.join(self.layout, "oci-layout"), json.dumps(LAYOUT).encode())
        with self.locked():
            if not os.path.exists(os.path.join(self.layout, "index.json")):
                self.write_index([])

    def locked(self) -> Lock:
        os.makedirs(self.root, exist_ok=True)
        return Lock(os.path.join(self.root, "images.lock"))

    # --- index.json ----------------------------------------------------------------

    def index(self) -> list[dict]:
        """The descriptors in index.json (none before the first image)."""
        try:
            with open(os.path.join(self.layout, "index.json"), "rb") as f:
                return json.load(f).get("manifests", [])
        except FileNotFoundError:
            return []

    def write_index(self, manifests: list[dict]) -> None:
        """Replace index.json. Call with the lock held."""
        document = {"schemaVersion": 2, "mediaType": imagespec.OCI_INDEX, "manifests": manifests}
        self.write_file(os.path.join(self.layout, "index.json"), json.dumps(document, indent=2).encode())

    # --- adding images -------------------------------------------------------------

    def put_image(self, manifest: bytes, names: list[str] = ()) -> Image:
        """Store a manifest whose blobs are already here, under `names` (or nameless)."""
        document = imagespec.parse_json(manifest, "manifest")
        imagespec.check_manifest(document)
        for child in self.children(document):
            if not self.has_blob(child["digest"]):
                raise DockyardError(f"the manifest refers to blob {child['digest']}, which is missing",
                                    hint="put every layer and the config before the manifest")
        digest = self.put_bytes(manifest)
        entry = imagespec.descriptor(document.get("mediaType", imagespec.OCI_MANIFEST), digest, len(manifest))
        names = [familiar(n) for n in names]
        with self.locked():
            entries = before = self.index()
            for name in names:
                entries = set_name(entries, entry, name)
            if not names and all(e["digest"] != digest for e in entries):
                entries = [*entries, entry]
            if entries != before:  # a rebuild from the cache names the same image again: nothing to write
                self.write_index(entries)
        return self.load(digest)

    def children(self, document: dict) -> list[dict]:
        """The descriptors a manifest points to (for an index: the manifests here)."""
        if document.get("mediaType") in imagespec.INDEXES:
            return [imagespec.pick_platform(document)]
        return [document["config"], *document["layers"]]

    def write_layer(self, source: str, upper: bool = False, epoch: int | None = None,
                    changes: list | None = None, shift: tuple[int, int] | None = None) -> tuple[dict, str]:
        """Store a directory (or, given `changes`, only those paths in it, owners unshifted) as a gzip layer."""
        from . import tarwrite
        def write(out) -> None:
            if changes is None:
                written.append(tarwrite.write_layer(source, out, upper, epoch))
            else:
                written.append(tarwrite.write_changes(source, changes, out, epoch, shift))
        written = []
        digest = self.put_blob_with(write)
        info = written[0]
        return imagespec.descriptor(imagespec.OCI_LAYER_GZIP, digest, info.size), info.diff_id

    def create_image(self, config: dict, layers: list[dict], names: list[str] = ()) -> Image:
        """Store `config` and a new manifest over `layers` (blobs already here)."""
        data = imagespec.canonical(config)
        config_descriptor = imagespec.descriptor(imagespec.OCI_CONFIG, self.put_bytes(data), len(data))
        return self.put_image(imagespec.canonical(imagespec.new_manifest(config_descriptor, layers)), names)

    def tag(self, image: Image, name: str) -> None:
        """Give `image` the name `name` (taking it from any other image)."""
        entry = next(e for e in self.index() if e["digest"] == image.digest)
        entry = {k: v for k, v in entry.items() if k != "annotations"}
        with self.locked():
            self.write_index(set_name(self.index(), entry, familiar(name)))

    # --- finding images ------------------------------------------------------------

    def load(self, digest: str, names: list[str] | None = None) -> Image:
        """The image whose (top) manifest has `digest`, with its config, checked."""
        manifest = imagespec.parse_json(self.read_blob(digest), "manifest")
        imagespec.check_manifest(manifest)
        if manifest.get("mediaType") in imagespec.INDEXES:
            inner = imagespec.parse_json(self.read_blob(imagespec.pick_platform(manifest)["digest"]), "manifest")
            imagespec.check_manifest(inner)
            manifest, manifest_digest = inner, imagespec.pick_platform(manifest)["digest"]
        else:
            manifest_digest = None
        config = imagespec.parse_json(self.read_blob(manifest["config"]["digest"]), "image config")
        imagespec.check_config(config, manifest)
        if names is None:
            names = [n for e in self.index() if e["digest"] == digest and (n := ref_name(e))]
        return Image(digest, manifest, config, names, manifest_digest)

    def images(self) -> Iterator[tuple[str | None, str, Image | None]]:
        """Each (name or None, manifest digest, image) in index.json; the image is None if it cannot be read."""
        for entry in self.index():
            try:
                yield ref_name(entry), entry["digest"], self.load(entry["digest"], [n for n in [ref_name(entry)] if n])
            except DockyardError:  # a missing or damaged manifest or config: one broken image, not `images`
                yield ref_name(entry), entry["digest"], None

    def missing_blobs(self, image: Image) -> list[str]:
        """The blobs of `image` that are not in the store (its unpacked layers may still run it)."""
        return sorted(d for d in self.blobs_of(image) if not self.has_blob(d))

    def resolve(self, text: str) -> Image:
        """The image named by `name[:tag]`, `name@sha256:...`, an image ID or a unique ID prefix."""
        entries = self.index()
        digest = self.find_digest(text, entries)
        if digest is None:
            raise ImageNotFound(text)
        return self.load(digest)

    def find_digest(self, text: str, entries: list[dict]) -> str | None:
        """Look `text` up as a name first, then as a digest or an ID prefix (as Docker does)."""
        if not text.startswith("sha256:"):
            ref = reference.parse(text)
            for entry in entries:
                if entry["digest"] == ref.digest or (not ref.digest and ref_name(entry) == ref.familiar):
                    return entry["digest"]
        hexes = re.fullmatch(r"(?:sha256:)?([0-9a-f]{4,64})", text)
        if not hexes:
            return None
        found = {e["digest"] for e in entries if e["digest"][7:].startswith(hexes.group(1))}
        found |= {e["digest"] for e in entries if self.image_id(e["digest"])[7:].startswith(hexes.group(1))}
        return found.pop() if len(found) == 1 else None

    def image_id(self, digest: str) -> str:
        """The IMAGE ID of a manifest; "" for a damaged one, which then matches no ID prefix."""
        try:
            return self.load(digest).id
        except DockyardError:
            return ""

    # --- removing images -----------------------------------------------------------

    def remove(self, text: str, force: bool = False) -> list[str]:
        """Untag a name, or delete an image and its unshared blobs; say what happened."""
        image = self.resolve_damaged(text) if force else self.resolve(text)
        name = None if re.fullmatch(r"(?:sha256:)?[0-9a-f]{4,64}", text) else reference.parse(text).familiar
        report = []
        with self.locked():
            entries = self.index()
            mine = [e for e in entries if e["digest"] == image.digest]
            if name in {ref_name(e) for e in mine} and len(mine) > 1:
                self.write_index([e for e in entries if ref_name(e) != name])
                return [f"Untagged: {name}"]
            if len([e for e in mine if ref_name(e)]) > 1 and not force:
                raise DockyardError(f"image {image.id[7:19]} has several names: {', '.join(image.names)}",
                                    hint="remove the names one at a time, or use rmi -f")
            self.write_index([e for e in entries if e["digest"] != image.digest])
            report += [f"Untagged: {n}" for n in (ref_name(e) for e in mine) if n]
            report += [f"Deleted: {d}" for d in self.collect_garbage(self.blobs_of(image))]
        return report

    def resolve_damaged(self, text: str) -> Image:
        """Like resolve, but an image whose manifest or config is gone comes back as what can be read."""
        try:
            return self.resolve(text)
        except ImageNotFound:
            raise
        except DockyardError:
            digest = self.find_digest(text, self.index())
            try:
                manifest = imagespec.parse_json(self.read_blob(digest), "manifest")
            except DockyardError:
                manifest = {}
            manifest = {"config": manifest.get("config") or {"digest": digest}, "layers": manifest.get("layers") or []}
            names = [n for e in self.index() if e["digest"] == digest and (n := ref_name(e))]
            return Image(digest, manifest, {}, names)

    def blobs_of(self, image: Image) -> set[str]:
        """The digests of every blob an image is made of."""
        return {image.digest, image.id, *(layer["digest"] for layer in image.layers)} | (
            {image.manifest_digest} if image.manifest_digest else set())

    def reachable(self) -> tuple[set[str], set[str]]:
        """The blobs and the diff ids that the images in index.json use."""
        blobs, diff_ids = set(), set()
        for entry in self.index():
            blobs.add(entry["digest"])
            try:
                image = self.load(entry["digest"], [])
            except DockyardError:
                continue  # a damaged image keeps what it has; rmi removes it
            blobs |= self.blobs_of(image)
            diff_ids.update(image.diff_ids)
        return blobs, diff_ids

    def collect_garbage(self, candidates: set[str] | None = None) -> list[str]:
        """Delete the blobs (among `candidates`, or all) that no image uses. Call with the lock held."""
        keep, _ = self.reachable()
        names = sorted(os.listdir(self.blobs)) if os.path.isdir(self.blobs) else []
        removed = [f"sha256:{n}" for n in names if f"sha256:{n}" not in keep
                   and (candidates is None or f"sha256:{n}" in candidates)]
        for digest in removed:
            os.unlink(self.blob_path(digest))
        return removed

    def prune(self, keep_layers: set[str] = frozenset()) -> list[str]:
        """Remove nameless images, unreachable blobs, unused unpacked layers, dead temp files."""
        self.ensure()
        with self.locked():
            entries = self.index()
            self.write_index([e for e in entries if ref_name(e)])
            report = [f"Deleted: {e['digest']}" for e in entries if not ref_name(e)]
            report += [f"Deleted: {d}" for d in self.collect_garbage()]
            used = self.reachable()[1] | set(keep_layers)
            for name in sorted(os.listdir(self.layers)):
                if f"sha256:{name}" not in used:
                    remove_layer(os.path.join(self.layers, name))
                    report.append(f"Deleted layer: sha256:{name}")
            report += self.sweep_temp()
        return report

    def sweep_temp(self) -> list[str]:
        """Remove what killed writers left in tmp/ (no one holds their owner's lock)."""
        removed = []
        for name in os.listdir(self.tmp):
            if not blobs.is_live_temp(self.tmp, name):
                path = os.path.join(self.tmp, name)
                shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else os.unlink(path)
                removed.append(f"Deleted temporary: {name}")
        blobs.sweep_owners(self.tmp)
        return removed

    # --- unpacked layers -----------------------------------------------------------

    def layer_dir(self, diff_id: str) -> str:
        return os.path.join(self.layers, self.blob_path(diff_id).rsplit("/", 1)[1])

    def unpack(self, image: Image, whiteouts: str = "overlay") -> list[str]:
        """Each layer's directory, bottom first, unpacking those not unpacked yet."""
        return self.unpack_layers(zip(image.layers, image.diff_ids), whiteouts)

    def unpack_layers(self, layers: Iterable[tuple[dict, str]], whiteouts: str = "overlay") -> list[str]:
        """Unpack (layer, diff id) pairs, bottom first, each seeing those below it; return their directories."""
        directories: list[str] = []
        for layer, diff_id in layers:
            directories.append(self.unpack_layer(layer, diff_id, whiteouts, lowers=directories[::-1]))
        return directories

    # --8<-- [start:unpack_layer]
    def unpack_layer(self, layer: dict, diff_id: str, whiteouts: str = "overlay", lowers: list[str] = []) -> str:
        """Unpack one layer blob into layers/<diff id>, checking both digests; `lowers`: the layers below."""
        target = self.layer_dir(diff_id)
        if os.path.isdir(target):
            return target  # unpacked already: what every run but the first finds
        from . import tar
        self.ensure()
        temp = self.temp_path()
        os.mkdir(temp, 0o755)
        try:
            # An uncompressed layer's blob is the tar itself, so its digest is the diff id: the
            # unpacker's hash checks both at once, rather than every byte being hashed twice.
            plain = layer["digest"] == diff_id
            with self.open_blob(layer["digest"]) as blob:
                actual, _ = tar.unpack(blob.file if plain else blob, temp, whiteouts, lowers)
            if actual != diff_id and plain:
                raise blobs.CorruptBlob(diff_id, blob.path, actual)
            if actual != diff_id:
                raise DockyardError(f"layer {layer['digest']} unpacks to {actual}, not the diff id {diff_id} "
                                    "its image config expects", hint="the image is damaged: remove it and "
                                    "pull or load it again")
            os.rename(temp, target)
        except OSError as err:
            if not os.path.isdir(target):  # another engine may have won the race to unpack it
                raise DockyardError(f"cannot unpack layer {layer['digest']}: {err}",
                                    hint="check free space and that --root is on a local filesystem") from err
        finally:
            shutil.rmtree(temp, ignore_errors=True)
        return target
    # --8<-- [end:unpack_layer]


def set_name(entries: list[dict], entry: dict, name: str) -> list[dict]:
    """Point `name` at `entry`; an image that loses its last name stays, nameless."""
    old = [e for e in entries if ref_name(e) == name and e["digest"] != entry["digest"]]
    entries = [e for e in entries if ref_name(e) != name
               and not (ref_name(e) is None and e["digest"] == entry["digest"])]
    entries.append({**entry, "annotations": {REF_NAME: name}})
    for e in old:
        if all(x["digest"] != e["digest"] for x in entries):
            entries.append({k: v for k, v in e.items() if k != "annotations"})
    return entries


def remove_layer(path: str) -> None:
    """An unpacked layer, however deep its image made it (layers.remove_tree); one that resists stays."""
    from .layers import remove_tree
    try:
        remove_tree(path)
    except OSError:
        pass
