# chapter: final
"""The security profile: what a container's processes may do, as plain data.

The engine fills it from --cap-add, --security-opt, --privileged, --device,
--read-only, --tmpfs (security.profile_from), the OCI CLI from a bundle's
process and linux sections; the runtime reads it in one place, the final
step (security.py). It lives apart from that mechanism so that the runtime's
description of a container (spec.py) can hold it without importing the
machinery that applies it.
"""

import dataclasses
from dataclasses import dataclass, field

from . import capabilities

# Beyond chapter 2's masks (mounts.py): more of /proc and /sys that describe or steer the host.
# /proc/interrupts is one Docker leaves readable: it counts every host CPU's interrupts.
MASKED_PATHS = ("/proc/asound", "/proc/latency_stats", "/proc/timer_stats", "/proc/interrupts",
                "/sys/firmware", "/sys/devices/virtual/powercap")


@dataclass
class Profile:
    """What a container's processes may do, whatever user they run as."""
    capabilities: list[str] = field(default_factory=lambda: list(capabilities.DEFAULT))
    no_new_privileges: bool = True
    seccomp: str = "default"       # "default", "unconfined", or a profile's JSON text (Docker's format)
    privileged: bool = False       # all capabilities and devices, no seccomp, no masked paths
    devices: list[dict] = field(default_factory=list)   # --device, as devices.parse gives them
    read_only: bool = False        # --read-only: the root filesystem cannot be written
    tmpfs: list[str] = field(default_factory=list)      # --tmpfs PATH[:OPTIONS]
    masked_paths: list[str] = field(default_factory=lambda: list(MASKED_PATHS))  # beyond chapter 2's
    readonly_paths: list[str] = field(default_factory=list)                      # beyond chapter 2's

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Profile":
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data})
