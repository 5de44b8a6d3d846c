"""Make the image busybox:latest from Debian's static busybox, with no network.

    python3 -m tools.busybox_image [--root DIR] [--impl final] [NAME]

Builds a busybox rootfs (tools/busybox_rootfs.py) in a temp dir and imports
it with the implementation's own CLI, `import -c 'CMD ["sh"]' DIR NAME`, so
the image lands in that --root like any other. Prints the image ID.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

from tools.busybox_rootfs import make_rootfs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="the engine's --root (default: its own default)")
    parser.add_argument("--impl", default="final", help="the package to run: final or chapters.05_images ...")
    parser.add_argument("name", nargs="?", default="busybox:latest")
    args = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="busybox-image-")
    try:
        rootfs = make_rootfs(os.path.join(scratch, "rootfs"))
        root = ["--root", args.root] if args.root else []
        command = [sys.executable, "-m", args.impl, *root, "import", "-c", 'CMD ["sh"]', rootfs, args.name]
        return subprocess.run(command).returncode
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
