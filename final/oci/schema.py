# chapter: final
"""Which fields of config.json this runtime understands, and which it refuses.

The runtime spec lets a runtime ignore nothing silently: a field it cannot
honour must fail the create, naming the field, rather than start a container
that is less confined than its config says. Each known field is marked:

    True      supported
    "ignore"  accepted and logged (SELinux and AppArmor labels: no LSM here)
    {...}     an object whose own fields are checked the same way
"""

from ..errors import DockyardError

Schema = dict[str, "bool | str | Schema"]

USER: Schema = {"uid": True, "gid": True, "umask": True, "additionalGids": True, "username": True}
CAPABILITIES: Schema = {"bounding": True, "effective": True, "permitted": True, "inheritable": True,
                        "ambient": True}
PROCESS: Schema = {
    "terminal": True, "consoleSize": True, "user": USER, "args": True, "env": True, "cwd": True,
    "capabilities": CAPABILITIES, "rlimits": True, "noNewPrivileges": True, "oomScoreAdj": True,
    "apparmorProfile": "ignore", "selinuxLabel": "ignore",
}
RESOURCES: Schema = {
    "devices": True,
    "memory": {"limit": True, "reservation": True, "swap": True, "swappiness": True,
               "disableOOMKiller": True, "useHierarchy": True},
    "cpu": {"shares": True, "quota": True, "period": True, "cpus": True, "mems": True},
    "pids": {"limit": True},
}
LINUX: Schema = {
    "namespaces": True, "uidMappings": True, "gidMappings": True,
    "cgroupsPath": True, "resources": RESOURCES, "seccomp": True,
    "rootfsPropagation": True, "maskedPaths": True, "readonlyPaths": True,
    "mountLabel": "ignore",
}
CONFIG: Schema = {
    "ociVersion": True, "process": PROCESS, "root": {"path": True, "readonly": True},
    "hostname": True, "mounts": True, "annotations": True,
    "hooks": {"prestart": True, "createRuntime": True, "poststart": True, "poststop": True},
    "linux": LINUX,
}


def check(config: dict, schema: Schema = CONFIG, where: str = "") -> list[str]:
    """Refuse a field we do not know; return the ignored ones, to be logged."""
    if not isinstance(config, dict):
        raise DockyardError(f"config.json: {where or 'the document'} must be a JSON object",
                            hint="see the OCI runtime spec's config.md")
    ignored = []
    for key, value in config.items():
        path = f"{where}.{key}" if where else key
        rule = schema.get(key)
        if rule is None and value not in (None, {}, [], "", 0):  # an empty field asks for nothing
            raise DockyardError(f"config.json: unsupported field {path}",
                                hint="remove it, or use a runtime that supports it (runc, crun)")
        if rule == "ignore" and value:
            ignored.append(path)
        elif isinstance(rule, dict) and value is not None:
            ignored += check(value, rule, path)
    return ignored
