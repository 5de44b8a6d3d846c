# chapter: final
"""run's flags that say again what other flags say: --env-file and --mount.

Docker has two spellings for some of run's settings. `--env-file FILE` is
`-e` once per line of FILE; `--mount type=bind,source=/a,target=/b,readonly`
is `-v /a:/b:ro`, and `--mount type=tmpfs,target=/t,tmpfs-size=64m` is
`--tmpfs /t:size=64m`. Each is read while argparse reads the command line
and turned into the plainer flag, so the one machinery behind that flag
(its checks, its mounts, its record) serves both:

    --env-file FILE   its lines go before every -e, so that -e still wins;
                      "# ..." and blank lines are skipped, a bare KEY passes
                      the engine's own value, as -e KEY does
    --mount KEY=VALUE,...   type=bind (the source must exist), volume (a
                      named one, or an anonymous one without a source) or
                      tmpfs; source|src, target|destination|dst, readonly|ro
"""

import argparse
import os

from .errors import UsageError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--env-file", action=EnvFile, metavar="FILE", help="variables, one KEY=VALUE a line (as -e)")
    p.add_argument("--mount", action=Mount, metavar="type=bind|volume|tmpfs,...",
                   help="a mount, Docker's long form of -v and --tmpfs")


class EnvFile(argparse.Action):
    """--env-file FILE: FILE's lines as -e, before the -e flags (whichever came first)."""

    def __call__(self, parser, namespace, path, option_string=None) -> None:
        namespace.env = lines_of(path, "env file") + list(namespace.env or [])


def lines_of(path: str, what: str) -> list[str]:
    """The KEY=VALUE lines of an --env-file or --label-file: "# ..." and blank lines skipped."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = [line.rstrip("\n").lstrip() for line in f]  # as Docker: leading white space goes
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(f"cannot read the {what} {path}: {getattr(err, 'strerror', None) or err}",
                         hint=f"give the {what} as a readable text file of KEY=VALUE lines") from None
    return [line for line in lines if line and not line.startswith("#")]


class Mount(argparse.Action):
    """--mount: the -v or --tmpfs it stands for, checked as Docker checks it."""

    def __call__(self, parser, namespace, text, option_string=None) -> None:
        fields = parse_fields(text)
        kind, target = fields.pop("type", "volume"), fields.pop("target", "")
        source, read_only = fields.pop("source", ""), fields.pop("readonly", "false") in ("", "true", "1")
        if not target.startswith("/"):
            raise refused(text, "it needs an absolute target=/path inside the container")
        if kind == "tmpfs":
            options = [f"size={fields.pop('tmpfs-size')}"] if "tmpfs-size" in fields else []
            options += [f"mode={fields.pop('tmpfs-mode')}"] if "tmpfs-mode" in fields else []
            check_nothing_left(text, fields, source)
            namespace.tmpfs = [*namespace.tmpfs, ":".join([target, ",".join(options)]) if options else target]
            return
        fields.pop("volume-nocopy" if kind == "volume" else "bind-propagation", None)
        check_nothing_left(text, fields)
        if kind == "bind" and not os.path.exists(source):
            raise refused(text, f"the bind source {source or '(none given)'} does not exist (-v would make it)")
        if kind not in ("bind", "volume"):
            raise refused(text, "type is bind, volume or tmpfs")
        spec = f"{source}:{target}" if source else target  # a volume without a source: an anonymous one
        namespace.volume = [*namespace.volume, spec + (":ro" if read_only and source else "")]


ALIASES = {"src": "source", "dst": "target", "destination": "target", "ro": "readonly"}


def parse_fields(text: str) -> dict[str, str]:
    fields = {}
    for item in text.split(","):
        key, _, value = item.partition("=")
        fields[ALIASES.get(key.strip(), key.strip())] = value.strip()
    return fields


def check_nothing_left(text: str, fields: dict[str, str], source: str = "") -> None:
    if fields or source:
        unknown = ", ".join(sorted(fields)) or "source"
        raise refused(text, f"{unknown} is not for this type of mount")


def refused(text: str, why: str) -> UsageError:
    return UsageError(f"invalid --mount {text!r}: {why}",
                      hint="e.g. --mount type=bind,source=/host/dir,target=/data,readonly")
