# chapter: final
"""Beyond the book: `run` pulls an image it does not have, as Docker does.

    $ python3 -m final run 127.0.0.1:5000/team/app echo hi
    Unable to find image '127.0.0.1:5000/team/app:latest' locally      (on stderr,
    latest: Pulling from team/app                                        with the
    ...                                                                  progress)
    hi

`--pull` says when to ask the registry:

    missing   (the default) only when the store has no image of that name
    always    every time: the name may mean a newer image by now
    never     never: an image that is not in the store is an error

The pull's lines go to stderr, so the container's stdout stays its own.
"""

import re
import sys

from .errors import DockyardError
from .store import ImageNotFound, familiar


def resolve_or_pull(store, name: str, policy: str):
    """The image `name` from the store, pulled first as `policy` says."""
    if policy != "always":
        try:
            return store.resolve(name)
        except ImageNotFound:
            if policy == "never" or re.fullmatch(r"(?:sha256:)?[0-9a-f]{4,64}", name):
                raise  # an image id names nothing a registry has
        print(f"Unable to find image '{familiar(name)}' locally", file=sys.stderr, flush=True)
    from .registry import commands
    store.ensure()
    try:
        commands.pull_image(store, name, out=sys.stderr)
    except DockyardError as err:
        raise DockyardError(f"no such image: {name}, and pulling it failed: {err.problem}", hint=err.hint) from err
    finally:
        store.leave_writers()  # the container's monitor must not hold `image prune` off for its whole life
    return store.resolve(name)
