"""`python3 -m final ...` starts here."""

import atexit  # ch final
import gc  # ch final
import os  # ch final
import sys

# >>> chapter final
# A start imports ~150 modules, whose objects all live until the engine exits. The
# collector runs after every 700 new objects and would walk them again and again for
# nothing (~2 ms of a 60 ms start); every 20,000 still keeps a long-running command
# (a monitor, `registry serve`) from piling up what it throws away.
gc.set_threshold(20_000)
exit_status: int | None = None  # main()'s, once it has returned


def exit_at_once() -> None:
    """The last exit handler (registered first): threads are joined and the other handlers have
    run. Python would now free each object of each module one by one (~3 ms of a start), which
    the kernel does at once for the whole process: so flush, and end the process here."""
    if exit_status is None:
        return  # an exception, or --help's sys.exit(): leave the usual way
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:
        return  # a reader that went away: Python's own exit reports it
    os._exit(exit_status)


atexit.register(exit_at_once)
# <<< chapter final
from .cli import main

# sys.exit(main())  # ch 01-07
exit_status = main()  # ch final
sys.exit(exit_status)  # ch final
