# chapter: final
"""The network flags of `run` as a container's record keeps them (network.py does the work).

A module of its own: the engine's Request holds these, and network.py, which
reads container records, must not be imported to define them.
"""

from dataclasses import dataclass, field


@dataclass
class Options:
    """The network flags of `run`, as the container's record keeps them."""
    aliases: list[str] = field(default_factory=list)      # --network-alias
    dns: list[str] = field(default_factory=list)          # --dns
    add_hosts: list[str] = field(default_factory=list)    # --add-host NAME:IP
    publish: list[dict] = field(default_factory=list)     # -p and -P, as proxy.Port fields
