"""`python3 -m final ...` starts here."""

import sys

from .cli import main

sys.exit(main())
