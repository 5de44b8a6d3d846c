# chapter: 06
"""Chapter 6: registries, or how images travel between machines.

An image is a tree of content-addressed blobs (chapter 5). A registry is an
HTTP server that stores such trees by name: clients PUT blobs and then a
manifest that names them, and GET them back, checking every byte against
its digest. Because the digest is the name, a client need not trust the
registry, nor the network, only the digest it asked for.

    names.py     the grammar of repository names, tags and digests
    spec.py      media types and the spec's JSON error codes
    storage.py   the server's content-addressed, crash-safe disk layout
    api.py       the distribution API: routes, pull, discovery, deletes, referrers
    push.py      ... and its push half: uploads and manifests
    server.py    HTTP plumbing: routing, streaming bodies, auth, logging
    auth.py      passwords, Basic auth and bearer tokens
    transport.py HTTP to a registry: TLS or not, Basic and bearer tokens, redirects
    client.py    pull and push against any registry (Docker Hub included)
    credentials.py, progress.py   login's config.json; Docker-like progress lines
    commands.py  `registry serve`, `pull`, `push`, `login`, `logout`

New here:  the OCI distribution spec, HTTP/1.1 (chunked bodies, Range), tokens
Try it:    python3 -m chapters.06_registry registry serve --storage /tmp/reg &
           skopeo copy --dest-tls-verify=false oci:STORE:busybox docker://127.0.0.1:5000/busybox
Not yet:   building images from a Dockerfile; see chapter 7.
"""
