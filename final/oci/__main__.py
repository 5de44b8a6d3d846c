# chapter: final
"""`python3 -m final.oci ...`: runc's command line over Dockyard's runtime.

containerd's shim runs this once per step of a container's life (create,
start, state, kill, delete ...), each time as a new process, so each command
must start fast and remember nothing but what it writes under --root.
tools/dockyard-runtime is the same entry point as an executable that
containerd can be pointed at.
"""

import sys

from .cli import main

sys.exit(main())
