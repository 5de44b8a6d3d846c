"""`python3 -m final ...` starts here."""

import gc  # ch final
import sys

# >>> chapter final
# A start imports ~150 modules, whose objects all live until the engine exits. The
# collector runs after every 700 new objects and would walk them again and again for
# nothing (~2 ms of a 60 ms start); every 20,000 still keeps a long-running command
# (a monitor, `registry serve`) from piling up what it throws away.
gc.set_threshold(20_000)
# <<< chapter final
from .cli import main

sys.exit(main())
