"""Chapter 5: `save` and `load`: images as one tar file.

`save` writes an OCI image layout as a tar (what skopeo calls an
oci-archive), plus Docker's `manifest.json`, so `docker load` reads it too.
`load` reads such an archive, or one from `docker save` (manifest.json,
a config, and a tar per layer). An archive is as untrusted as any layer, so
it is unpacked with the same safe unpacker, into a temp dir, and every blob
is checked against its digest on its way into the store. The images get
their names only once all their blobs are in and every layer has unpacked
to the diff id its config promises.
"""

import json
import os
import shutil
import stat
from typing import BinaryIO

from . import imagespec, reference, tar, tarformat
from .errors import DockyardError
from .imagespec import CONTAINERD_NAME, REF_NAME, Image
from .store import Store
from .tarformat import Member


def save(store: Store, images: list[tuple[str | None, Image]], out: BinaryIO) -> None:
    """Write `images` (with the name each is saved under) as one OCI archive to `out`."""
    index, docker, blobs = [], [], {}
    for name, image in images:
        annotations = {REF_NAME: name, CONTAINERD_NAME: str(reference.parse(name))} if name else {}
        entry = next(e for e in store.index() if e["digest"] == image.digest)
        index.append({**{k: v for k, v in entry.items() if k != "annotations"}, "annotations": annotations})
        docker.append({"Config": blob_name(image.id), "RepoTags": [name] if name else [],
                       "Layers": [blob_name(layer["digest"]) for layer in image.layers]})
        for digest in sorted(store.blobs_of(image)):
            blobs[blob_name(digest)] = digest
    write_member(out, "oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
    write_member(out, "index.json", imagespec.canonical(
        {"schemaVersion": 2, "mediaType": imagespec.OCI_INDEX, "manifests": index}))
    write_member(out, "manifest.json", json.dumps(docker).encode())
    for directory in ("blobs/", "blobs/sha256/"):
        out.write(tarformat.header(Member(name=directory, type=tarformat.DIRECTORY, mode=0o755)))
    for name, digest in sorted(blobs.items()):
        copy_blob(store, digest, name, out)
    out.write(bytes(2 * tarformat.BLOCK))


def blob_name(digest: str) -> str:
    return "blobs/sha256/" + digest.split(":", 1)[1]


def write_member(out: BinaryIO, name: str, data: bytes) -> None:
    out.write(tarformat.header(Member(name=name, type=tarformat.REGULAR, size=len(data))))
    out.write(data + bytes(tarformat.padding(len(data))))


def copy_blob(store: Store, digest: str, name: str, out: BinaryIO) -> None:
    """Append one blob, verified as it is read, as a member of the archive."""
    size = os.path.getsize(store.blob_path(digest))
    out.write(tarformat.header(Member(name=name, type=tarformat.REGULAR, size=size)))
    with store.open_blob(digest) as blob:
        while chunk := blob.read(tarformat.CHUNK):
            out.write(chunk)
    out.write(bytes(tarformat.padding(size)))


# --- load ------------------------------------------------------------------------

def load(store: Store, source: BinaryIO) -> list[str]:
    """Load every image of an OCI or docker-save archive; return what was loaded."""
    store.ensure()
    before = set(os.listdir(store.blobs))
    temp = store.temp_path()
    os.mkdir(temp, 0o700)
    try:
        tar.unpack(source, temp, whiteouts="oci")
        if os.path.exists(os.path.join(temp, "index.json")):
            found = read_oci_layout(store, temp)
        elif os.path.exists(os.path.join(temp, "manifest.json")):
            found = read_docker_save(store, temp)
        else:
            raise tarformat.BadArchive("the archive holds neither index.json nor manifest.json",
                                       hint="load reads what 'save' (ours, docker's or skopeo's) writes")
        return [finish(store, manifest, names) for manifest, names in found]
    except BaseException:
        with store.locked():  # leave the store as it was: drop the blobs this load added
            store.collect_garbage({f"sha256:{n}" for n in set(os.listdir(store.blobs)) - before})
        raise
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def read_oci_layout(store: Store, layout: str) -> list[tuple[bytes, list[str]]]:
    """Move each image's blobs into the store; return (manifest, names) per image."""
    index = imagespec.parse_json(read_file(layout, "index.json"), "archive's index.json")
    found = []
    for entry in index.get("manifests", []):
        manifest = import_tree(store, layout, entry["digest"])
        found.append((manifest, names_of(entry.get("annotations") or {})))
    return found


def names_of(annotations: dict) -> list[str]:
    """The image's name: containerd's full name, else ref.name if it is more than a bare tag."""
    for key in (CONTAINERD_NAME, REF_NAME):
        name = annotations.get(key, "")
        if ":" in name or "/" in name:
            return [name]
    return []


def import_tree(store: Store, layout: str, digest: str) -> bytes:
    """Put a manifest (or index) and what it points to into the store; return its bytes."""
    data = import_blob(store, layout, digest)
    document = imagespec.parse_json(data, "manifest")
    imagespec.check_manifest(document)
    if document.get("mediaType") in imagespec.INDEXES:
        import_tree(store, layout, imagespec.pick_platform(document)["digest"])
    else:
        for child in (document["config"], *document["layers"]):
            import_blob(store, layout, child["digest"])
    return data


def import_blob(store: Store, layout: str, digest: str) -> bytes | None:
    """Copy one blob in, verifying it; return its bytes if it is small (JSON)."""
    store.blob_path(digest)  # refuses a malformed digest before it becomes a path
    try:
        f = open_member(layout, blob_name(digest))
    except FileNotFoundError as err:
        raise tarformat.BadArchive(f"the archive lacks blob {digest}") from err
    with f:
        store.put_blob(f, digest)
        small = os.fstat(f.fileno()).st_size <= imagespec.MAX_JSON
    return store.read_blob(digest) if small else None


def read_docker_save(store: Store, root: str) -> list[tuple[bytes, list[str]]]:
    """docker save's layout: manifest.json lists each image's config and layer files."""
    found = []
    for item in json.loads(read_file(root, "manifest.json")):
        config = read_file(root, item["Config"])
        config_descriptor = imagespec.descriptor(imagespec.OCI_CONFIG, store.put_bytes(config), len(config))
        layers = [docker_layer(store, root, path) for path in item["Layers"]]
        manifest = imagespec.canonical(imagespec.new_manifest(config_descriptor, layers))
        found.append((manifest, item.get("RepoTags") or []))
    return found


def docker_layer(store: Store, root: str, path: str) -> dict:
    """One layer file of a docker-save archive, stored as a blob as it is."""
    with open_member(root, path) as f:
        gzipped = f.read(2) == tarformat.GZIP_MAGIC
        f.seek(0)
        digest = store.put_blob(f)
    media_type = imagespec.OCI_LAYER_GZIP if gzipped else imagespec.OCI_LAYER
    return imagespec.descriptor(media_type, digest, os.path.getsize(store.blob_path(digest)))


def read_file(root: str, path: str) -> bytes:
    try:
        with open_member(root, path) as f:
            return f.read(imagespec.MAX_JSON)
    except tarformat.BadArchive:
        raise
    except OSError as err:
        raise tarformat.BadArchive(f"the archive's {path} cannot be read: {err.strerror}") from err


def open_member(root: str, path: str) -> BinaryIO:
    """Open a regular file of the unpacked archive: never through a link, never a device, never outside it."""
    full = safe_join(root, path)
    parts = os.path.relpath(full, os.path.realpath(root)).split(os.sep)
    for depth in range(1, len(parts) + 1):  # a link anywhere on the way could lead to a host file
        if os.path.islink(os.path.join(root, *parts[:depth])):
            raise tarformat.BadArchive(f"the archive's {path} is a link", hint="load only archives written by save")
    fd = os.open(os.path.join(root, *parts), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise tarformat.BadArchive(f"the archive's {path} is not a regular file", hint="load only archives written by save")
    return os.fdopen(fd, "rb")


def safe_join(root: str, path: str) -> str:
    """A path named inside the archive's JSON, kept inside the unpacked archive."""
    full = os.path.realpath(os.path.join(root, path))
    if not full.startswith(os.path.realpath(root) + os.sep):
        raise tarformat.BadArchive(f"the archive names a file outside itself: {path!r}")
    return full


def finish(store: Store, manifest: bytes, names: list[str]) -> str:
    """Unpack the image's layers (checking diff ids), then name it; return a report line."""
    document = json.loads(manifest)
    if document.get("mediaType") not in imagespec.INDEXES and os.geteuid() == 0:
        config = imagespec.parse_json(store.read_blob(document["config"]["digest"]), "image config")
        imagespec.check_config(config, document)
        store.unpack_layers(zip(document["layers"], config["rootfs"]["diff_ids"]))
    image = store.put_image(manifest, names)
    return f"Loaded image: {reference.parse(names[0]).familiar}" if names else f"Loaded image ID: {image.id}"
