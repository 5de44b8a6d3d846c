# chapter: final
"""Hooks: programs config.json asks the runtime to run at points of the lifecycle.

Each hook gets the container's state JSON on its stdin, as the spec says,
so that a network plugin (for instance) learns the PID whose namespaces it
should wire up. A failing prestart or createRuntime hook fails the create;
a failing poststart or poststop hook is only logged.
"""

import json
import subprocess

from ..errors import DockyardError
from . import log


def run(config: dict, point: str, state: dict, fatal: bool = True) -> None:
    for hook in (config.get("hooks") or {}).get(point, []):
        path = hook.get("path", "")
        argv = hook.get("args") or [path]
        env = dict(item.split("=", 1) for item in hook.get("env") or [] if "=" in item)
        try:
            result = subprocess.run(argv, executable=path, input=json.dumps(state), env=env,
                                    capture_output=True, text=True, timeout=hook.get("timeout"))
            failure = f"exited with {result.returncode}: {result.stderr.strip()}" if result.returncode else ""
        except (OSError, subprocess.TimeoutExpired) as err:
            failure = str(err)
        if failure:
            if fatal:
                raise DockyardError(f"the {point} hook {path} failed: {failure}", hint="check the hook in config.json")
            log.info(f"the {point} hook {path} failed: {failure}")
