"""Build tar layers and OCI archives by hand, hostile ones included, for the image tests.

Written with Python's tarfile (only ever to *write* here), independent of
the implementation under test.
"""

import gzip
import hashlib
import io
import json
import tarfile


def entry(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", link: str = "",
          mode: int = 0o644, **fields) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode, info.mtime = kind, link, mode, 1700000000
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    for key, value in fields.items():
        setattr(info, key, value)
    return info, data


def file(name: str, data: bytes = b"x\n", **fields):
    return entry(name, data=data, **fields)


def directory(name: str, mode: int = 0o755):
    return entry(name, tarfile.DIRTYPE, mode=mode)


def symlink(name: str, target: str):
    return entry(name, tarfile.SYMTYPE, link=target, mode=0o777)


def hardlink(name: str, target: str):
    return entry(name, tarfile.LNKTYPE, link=target)


def tar_bytes(*entries) -> bytes:
    """A tar archive of these entries, in this order (duplicates allowed)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for info, data in entries:
            archive.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return out.getvalue()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def oci_archive(layers: list[bytes], name: str = "test:latest", config: dict | None = None,
                diff_ids: list[str] | None = None, gzipped: bool = True) -> bytes:
    """An OCI archive (as `save` or skopeo write it) of one image with these layer tars."""
    blobs, descriptors = {}, []
    for layer in layers:
        blob = gzip.compress(layer, mtime=0) if gzipped else layer
        blobs[sha256(blob)] = blob
        media = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if gzipped else "")
        descriptors.append({"mediaType": media, "digest": sha256(blob), "size": len(blob)})
    image_config = {"architecture": "amd64", "os": "linux", "config": config or {"Cmd": ["sh"]},
                    "rootfs": {"type": "layers", "diff_ids": diff_ids or [sha256(l) for l in layers]}}
    config_blob = json.dumps(image_config).encode()
    blobs[sha256(config_blob)] = config_blob
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": sha256(config_blob), "size": len(config_blob)},
                           "layers": descriptors}).encode()
    blobs[sha256(manifest)] = manifest
    index = {"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha256(manifest),
        "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": name}}]}
    files = [file("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), file("index.json", json.dumps(index).encode())]
    files += [file("blobs/sha256/" + digest[7:], blob) for digest, blob in blobs.items()]
    return tar_bytes(*files)
