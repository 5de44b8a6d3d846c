# chapter: final
"""A bundle's config.json, read into the runtime's own RuntimeSpec.

This is the only place that knows the runtime spec's JSON. Each part of
config.json maps onto one part of the description that `run` builds from
its flags (final/spec.py):

    process              Process (args, env, cwd, uid/gid, terminal, rlimits)
    root, mounts         Root, [Mount]
    linux.namespaces     new namespaces, or paths of ones to join
    linux.*Mappings      the uid and gid maps of a user namespace
    linux.resources      Limits (memory, cpu, pids) for the cgroup
    hostname             the UTS namespace's name
"""

import json
import os
import resource
import socket

from ..errors import DockyardError
from ..limits import Limits
from ..spec import Process, Root, RuntimeSpec
from ..security import Profile
from . import log, mounts, schema

# config.json's namespace names -> the runtime's (clone(2)'s) names.
NAMESPACES = {"mount": "mount", "uts": "uts", "ipc": "ipc", "pid": "pid", "network": "network",
              "user": "user", "cgroup": "cgroup"}


def load(bundle: str) -> dict:
    """The bundle's config.json, checked field by field against what we support."""
    path = os.path.join(bundle, "config.json")
    try:
        with open(path) as f:
            config = json.load(f)
    except FileNotFoundError:
        raise DockyardError(f"{path} does not exist: a bundle is a directory with config.json and a rootfs",
                            hint="write one with: python3 -m final.oci spec --bundle DIR") from None
    except (OSError, ValueError) as err:
        raise DockyardError(f"cannot read {path}: {err}", hint="is it valid JSON?") from None
    for ignored in schema.check(config):
        log.info(f"config.json: {ignored} is ignored: this runtime has no LSM support")
    if "process" not in config or not config["process"].get("args"):
        raise DockyardError("config.json: process.args is missing", hint="say which command to run")
    return config


def to_spec(container_id: str, bundle: str, config: dict) -> RuntimeSpec:
    """The runtime's description of the container that config.json describes."""
    linux = config.get("linux") or {}
    if linux.get("rootfsPropagation", "rprivate") not in ("private", "rprivate"):
        raise DockyardError(f"config.json: linux.rootfsPropagation {linux['rootfsPropagation']!r} is not supported",
                            hint="this runtime makes every mount of the container private (rprivate)")
    namespaces = [NAMESPACES[n["type"]] for n in linux.get("namespaces", []) if not n.get("path")]
    return RuntimeSpec(
        id=container_id,
        process=to_process(config["process"], linux.get("seccomp")),
        root=to_root(config.get("root") or {}, bundle),
        hostname=config.get("hostname") or socket.gethostname(),  # a new UTS namespace starts with ours
        namespaces=namespaces,
        join={NAMESPACES[n["type"]]: n["path"] for n in linux.get("namespaces", []) if n.get("path")},
        uid_map=id_map(linux.get("uidMappings")),
        gid_map=id_map(linux.get("gidMappings")),
        mounts=[mount for m in config.get("mounts") or [] if not mounts.made_by_runtime(m)
                for mount in mounts.to_mounts(m, bundle)],
        resources=to_limits(linux.get("resources") or {}),
    )


def to_process(process: dict, seccomp: dict | None = None) -> Process:
    user = process.get("user") or {}
    env = dict(item.split("=", 1) if "=" in item else (item, "") for item in process.get("env") or [])
    return Process(args=process["args"], env=env, cwd=process.get("cwd") or "/",
                   user=f"{user.get('uid', 0)}:{user.get('gid', 0)}", terminal=bool(process.get("terminal")),
                   security=to_profile(process, seccomp))


def to_profile(process: dict, seccomp: dict | None) -> Profile:
    """process.capabilities, noNewPrivileges and linux.seccomp as the security profile."""
    sets = process.get("capabilities") or {}
    bounding = sets.get("bounding") or []
    for name in ("effective", "permitted"):
        if sorted(sets.get(name) or []) != sorted(bounding):
            raise DockyardError(f"config.json: process.capabilities.{name} differs from the bounding set",
                                hint="this runtime gives one set to bounding, effective and permitted")
    if sets.get("inheritable"):
        raise DockyardError("config.json: process.capabilities.inheritable is not supported",
                            hint="leave it empty: the inheritable set stays empty here")
    # Ambient capabilities survive exec for a non-root user; root's exec gets the bounding set anyway.
    uid = (process.get("user") or {}).get("uid", 0)
    if sets.get("ambient") and (uid != 0 or not set(sets["ambient"]) <= set(bounding)):
        raise DockyardError("config.json: process.capabilities.ambient is supported only for uid 0, "
                            "within the bounding set", hint="leave it empty, or run the process as root")
    return Profile(capabilities=list(bounding), no_new_privileges=bool(process.get("noNewPrivileges")),
                   seccomp=json.dumps(seccomp) if seccomp else "unconfined")


def set_rlimits(process: dict) -> None:
    """Apply process.rlimits to ourselves: the container's process inherits them across clone and exec."""
    for limit in process.get("rlimits") or []:
        name = limit.get("type", "")
        number = getattr(resource, name, None)
        if not name.startswith("RLIMIT_") or number is None:
            raise DockyardError(f"config.json: unknown rlimit {name!r}", hint="use RLIMIT_NOFILE, RLIMIT_NPROC ...")
        try:
            resource.setrlimit(number, (limit["soft"], limit["hard"]))
        except (ValueError, OSError) as err:
            raise DockyardError(f"cannot set {name} to {limit['soft']}/{limit['hard']}: {err}",
                                hint="a hard limit above this machine's own needs CAP_SYS_RESOURCE") from None


def set_oom_score_adj(process: dict) -> None:
    """process.oomScoreAdj, inherited the same way."""
    if process.get("oomScoreAdj") is not None:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(process["oomScoreAdj"]))


def to_root(root: dict, bundle: str) -> Root:
    path = os.path.join(bundle, root.get("path") or "rootfs")  # an absolute path stays as it is
    if not os.path.isdir(path):
        raise DockyardError(f"the bundle's root {path} is not a directory",
                            hint="root.path names the rootfs, relative to the bundle")
    return Root(path=os.path.realpath(path), readonly=bool(root.get("readonly")))


def id_map(mappings: list[dict] | None) -> str:
    return "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in mappings or [])


def to_limits(resources: dict) -> Limits:
    """linux.resources as the cgroup limits of chapter 3."""
    memory, cpu, pids = resources.get("memory") or {}, resources.get("cpu") or {}, resources.get("pids") or {}
    quota, period = cpu.get("quota"), cpu.get("period") or 100_000
    return Limits(memory=memory.get("limit") if (memory.get("limit") or -1) > 0 else None,
                  memory_swap=memory.get("swap"),
                  cpus=quota / period if quota and quota > 0 else None,
                  cpu_shares=cpu.get("shares"),
                  pids_limit=pids.get("limit") if (pids.get("limit") or -1) > 0 else None)
