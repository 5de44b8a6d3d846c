#!/bin/sh
# Quickstart: install what Dockyard needs, then run a first container.
#
#     sh tools/quickstart.sh
#
# Works on a fresh Debian 12 or Ubuntu 24.04 machine (or the Vagrant VM), with
# no network beyond apt: the container's root filesystem is made here, from
# Debian's static busybox. Safe to run again. Needs root; asks sudo for it.
set -eu

REPO=$(cd "$(dirname "$0")/.." && pwd)
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "error: run this as root (sudo is not installed)" >&2; exit 1; }
    exec sudo -- sh "$REPO/tools/quickstart.sh" "$@"
fi
cd "$REPO"
# Python caches byte-code (it is part of the start time), by default in __pycache__/
# next to each module: as root, in a user's checkout, that leaves files the user
# cannot delete. Root's cache goes to a tree of its own instead, outside the checkout.
if [ "$(stat -c %u "$REPO")" -ne 0 ]; then
    export PYTHONPYCACHEPREFIX="${PYTHONPYCACHEPREFIX:-/var/cache/dockyard/pycache}"
fi
sh tools/packages.sh quickstart

# Debian's own python starts fastest; PYTHON=... picks another (3.10 or newer).
PYTHON=${PYTHON:-/usr/bin/python3}
SCRATCH=$(mktemp -d /tmp/dockyard-quickstart.XXXXXX)
cleanup() {
    rm -rf --one-file-system "$SCRATCH"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The image busybox:latest, made here from Debian's static busybox (no network).
"$PYTHON" -m tools.busybox_image --root "$SCRATCH/state" >/dev/null
"$PYTHON" -m final --root "$SCRATCH/state" run --rm busybox /bin/sh -c \
    'echo "Hello from inside a Dockyard container!"; echo "/ holds:" $(ls /); echo "I am $(whoami), pid $$"'

echo
echo "That was 'python3 -m final run'. To look around inside yourself:"
echo "  sudo python3 -m tools.busybox_image"
echo "  sudo python3 -m final run -i busybox"
echo "Then run the tests: sh tools/test.sh"
