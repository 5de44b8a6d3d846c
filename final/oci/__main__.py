# chapter: final
"""`python3 -m final.oci ...`: runc's command line over Dockyard's runtime."""

import sys

from .cli import main

sys.exit(main())
