#!/bin/sh
# Install what the test suite needs, then run it.
#
#     sh tools/test.sh                    every chapter snapshot and final/
#     sh tools/test.sh --impl final -x    any pytest options
#
# Works on a fresh Debian 12 or Ubuntu 24.04 machine (or the Vagrant VM). The
# tests make containers, so they need root; this script asks sudo for it.
set -eu

REPO=$(cd "$(dirname "$0")/.." && pwd)
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "error: run this as root (sudo is not installed)" >&2; exit 1; }
    exec sudo -- sh "$REPO/tools/test.sh" "$@"
fi
cd "$REPO"
# Python caches byte-code (it is part of the start time), by default in __pycache__/
# next to each module: as root, in a user's checkout, that leaves files the user
# cannot delete. Root's cache goes to a tree of its own instead, outside the checkout.
if [ "$(stat -c %u "$REPO")" -ne 0 ]; then
    export PYTHONPYCACHEPREFIX="${PYTHONPYCACHEPREFIX:-/var/cache/dockyard/pycache}"
fi
sh tools/packages.sh test

# pytest reads options before it loads tests/conftest.py, which defines --impl,
# so in `--impl final` it would take `final` for the tests to run and never
# load that conftest. Name the tests folder unless the arguments name tests.
names_tests=no
for arg in "$@"; do
    case "$(realpath -m -- "${arg%%::*}" 2>/dev/null)" in
        "$REPO/tests" | "$REPO/tests/"*) names_tests=yes ;;
    esac
done
[ "$names_tests" = yes ] || set -- tests "$@"

# Debian's python and pytest: the suite starts the engine hundreds of times, and
# this python starts faster than most. PYTHON=... picks another (with pytest).
exec "${PYTHON:-/usr/bin/python3}" -m pytest "$@"
