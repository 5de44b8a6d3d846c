# chapter: final
"""Root in a container is not root on the host: the security profile and the final step.

Namespaces give a container its own view; they do not take root's power away.
Root inside still holds every capability, may make every system call and open
every device node it can create. The profile narrows that, in layers that do
not trust each other:

    capabilities     Docker's 14 defaults, not ~41           (capabilities.py)
    no_new_privs     exec never grants more: setuid files and file caps do nothing
    seccomp          an allowlist of system calls             (seccomp.py)
    devices          only /dev/null, zero, ..., pts may be opened (devices.py)
    masked paths     /proc and /sys files that describe or steer the host

Every process that enters a container goes through one function,
`final_step`: PID 1, `--init`'s PID 1 (whose child inherits it across fork),
`exec`. Its order matters:

    drop the bounding set     while CAP_SETPCAP is still ours
    set no_new_privs
    load the seccomp filter   before capset: without no_new_privs it needs CAP_SYS_ADMIN
    switch to the user        setuid from root clears a non-root user's capabilities
    set the other sets        effective = permitted = the profile's; inheritable, ambient empty
    exec
"""

import argparse
import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import NoReturn

from . import capabilities, libc, process, seccomp
from .errors import UsageError


@dataclass
class Profile:
    """What a container's processes may do, whatever user they run as."""
    capabilities: list[str] = field(default_factory=lambda: list(capabilities.DEFAULT))
    no_new_privileges: bool = True
    seccomp: str = "default"       # "default", "unconfined", or a profile's JSON text (Docker's format)
    privileged: bool = False       # all capabilities and devices, no seccomp, no masked paths

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Profile":
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data})


# --8<-- [start:final_step]
def final_step(profile: Profile, user: str, argv: list[str], env: dict[str, str]) -> NoReturn:
    """Become the container's process for good, then exec `argv`. Call inside the container."""
    confine(profile, user, env)
    process.exec_command(argv, env)


def confine(profile: Profile, user: str, env: dict[str, str]) -> None:
    """Switch to `user` and take away what the profile does not grant; irreversible."""
    keep = capabilities.mask(profile.capabilities)
    capabilities.drop_bounding(keep)
    if profile.no_new_privileges:
        libc.prctl(libc.PR_SET_NO_NEW_PRIVS, 1)
    load_seccomp(profile)
    if user:
        from .image_run import switch_user
        switch_user(user, env)
    capabilities.set_process_sets(keep, is_root=os.getuid() == 0)
# --8<-- [end:final_step]


def load_seccomp(profile: Profile) -> None:
    """Attach the profile's filter, if it has one."""
    if profile.seccomp == "unconfined":
        return
    rules = seccomp.default_profile() if profile.seccomp == "default" else json.loads(profile.seccomp)
    seccomp.load(rules, profile.capabilities)


# --- from the command line ------------------------------------------------------------

def add_arguments(p: argparse.ArgumentParser) -> None:
    """run's (and create's) security flags."""
    p.add_argument("--cap-add", action="append", default=[], metavar="CAP", help="add a capability (or ALL)")
    p.add_argument("--cap-drop", action="append", default=[], metavar="CAP", help="drop a capability (or ALL)")
    p.add_argument("--privileged", action="store_true",
                   help="all capabilities and devices, no seccomp filter, no masked paths")
    p.add_argument("--security-opt", action="append", default=[], metavar="OPT",
                   help="no-new-privileges[=false], seccomp=unconfined|PROFILE.json")


def profile_from(args: argparse.Namespace) -> Profile:
    """The profile that run's flags ask for."""
    profile = Profile(capabilities=capabilities.resolve(args.cap_add, args.cap_drop, args.privileged),
                      privileged=args.privileged)
    if args.privileged:
        profile.seccomp = "unconfined"
    for option in args.security_opt:
        apply_option(profile, option)
    return profile


def apply_option(profile: Profile, option: str) -> None:
    """Apply one --security-opt KEY[=VALUE] (Docker also accepts KEY:VALUE)."""
    key, sep, value = option.partition("=")
    if not sep:
        key, _, value = option.partition(":")
    if key == "no-new-privileges":
        if value not in ("", "true", "false"):
            raise UsageError(f"invalid --security-opt {option!r}", hint="use no-new-privileges or no-new-privileges=false")
        profile.no_new_privileges = value != "false"
    elif key == "seccomp" and value:
        profile.seccomp = value if value == "unconfined" else json.dumps(seccomp.read_profile(value))
    else:
        raise UsageError(f"unsupported --security-opt {option!r}",
                         hint="use no-new-privileges[=false], seccomp=unconfined or seccomp=PROFILE.json")

