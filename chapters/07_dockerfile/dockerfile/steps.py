"""What each instruction does to the image config, as Docker records it.

Most instructions change no file, only the config that `run` starts from:

    ENV A=1          config.Env += ["A=1"]        (replacing an old A)
    LABEL k=v        config.Labels[k] = v
    EXPOSE 80        config.ExposedPorts["80/tcp"] = {}
    VOLUME /data     config.Volumes["/data"] = {}
    USER app         config.User = "app"
    WORKDIR src      config.WorkingDir = old WorkingDir + "/src"
    CMD echo hi      config.Cmd = SHELL + ["echo hi"]     (shell form)
    CMD ["echo"]     config.Cmd = ["echo"]                (exec form)
    ENTRYPOINT ...   config.Entrypoint, and an inherited Cmd is dropped
    SHELL [...]      the shell for later shell forms (config.Shell)
    STOPSIGNAL, HEALTHCHECK, ONBUILD, MAINTAINER: their own fields

Their arguments are expanded first (expand.py) with the stage's ENV and ARG
values; RUN, CMD and ENTRYPOINT are left to the shell in the container.
"""

import json
import posixpath
from typing import Any, Callable

from .expand import ExpandError, Lexer
from .parser import Instruction

DEFAULT_SHELL = ["/bin/sh", "-c"]
EXPANDED = ("add", "copy", "env", "expose", "label", "stopsignal", "user", "volume", "workdir")

# Flags the parser accepts (Docker's syntax) that the builder does not implement.
IGNORED_FLAGS = {("run", "mount"), ("run", "network"), ("run", "security"), ("copy", "link"),
                 ("copy", "parents"), ("copy", "exclude"), ("add", "link"), ("add", "keep-git-dir"),
                 ("add", "unpack"), ("add", "exclude")}


class StepError(Exception):
    """An instruction that cannot be applied; the builder adds the file and line."""

    def __init__(self, problem: str, hint: str) -> None:
        super().__init__(problem)
        self.problem, self.hint = problem, hint


def expand_args(instruction: Instruction, env: dict[str, str], escape: str) -> list[str]:
    """The arguments after variable substitution (only for instructions that expand)."""
    if instruction.cmd not in EXPANDED:
        return list(instruction.args)
    lexer = Lexer(escape)
    try:
        return [arg if instruction.cmd in ("env", "label") and i % 3 == 2 else lexer.word(arg, env)
                for i, arg in enumerate(instruction.args)]
    except ExpandError as err:
        raise StepError(f"cannot expand {instruction.cmd.upper()}: {err}",
                        hint="check the ${...} syntax and the quotes") from None


def shell_form(args: list[str], is_json: bool, shell: list[str]) -> list[str]:
    """An exec-form command as is; a shell-form one under the stage's SHELL."""
    return list(args) if is_json else [*shell, args[0]] if args else []


def pairs(args: list[str]) -> list[tuple[str, str]]:
    """ENV and LABEL triples (key, value, separator) as (key, value) pairs."""
    return list(zip(args[::3], args[1::3]))


def set_env(c: dict, args: list[str]) -> None:
    env = list(c.get("Env") or [])
    for key, value in pairs(args):
        env = [e for e in env if e.partition("=")[0] != key] + [f"{key}={value}"]
    c["Env"] = env


def set_labels(c: dict, args: list[str]) -> None:
    c["Labels"] = {**(c.get("Labels") or {}), **dict(pairs(args))}


def add_ports(c: dict, args: list[str]) -> None:
    ports = dict(c.get("ExposedPorts") or {})
    for word in " ".join(args).split():
        port, _, proto = word.partition("/")
        first, _, last = port.partition("-")
        if not first.isdigit() or (last and not last.isdigit()):
            raise StepError(f"invalid port {word!r} in EXPOSE", hint="write EXPOSE 80, 80/udp or 8000-8010")
        for number in range(int(first), int(last or first) + 1):
            ports[f"{number}/{(proto or 'tcp').lower()}"] = {}
    c["ExposedPorts"] = ports


def add_volumes(c: dict, args: list[str]) -> None:
    c["Volumes"] = {**(c.get("Volumes") or {}), **{path: {} for path in args}}


def set_workdir(c: dict, args: list[str]) -> None:
    c["WorkingDir"] = posixpath.normpath(posixpath.join(c.get("WorkingDir") or "/", args[0]))


def set_healthcheck(c: dict, instruction: Instruction, shell: list[str]) -> None:
    args, options = instruction.args, instruction.options
    if args[0].upper() == "NONE":
        c["Healthcheck"] = {"Test": ["NONE"]}
        return
    command = args[1:]
    test = ["CMD", *command] if instruction.json else ["CMD-SHELL", command[0]]
    check: dict[str, Any] = {"Test": test}
    for flag, field in (("interval", "Interval"), ("timeout", "Timeout"),
                        ("start-period", "StartPeriod"), ("start-interval", "StartInterval")):
        if options.get(flag):
            check[field] = int(options[flag] * 1e9)
    if options.get("retries"):
        check["Retries"] = int(options["retries"])
    c["Healthcheck"] = check


def trigger_text(instruction: Instruction) -> str:
    """An ONBUILD trigger as the text that will be parsed again (heredoc bodies included)."""
    bodies = "".join(f"\n{doc.content}{doc.name}" for doc in instruction.heredocs)
    return instruction.args[0].original + bodies


APPLY: dict[str, Callable[[dict, list[str]], None]] = {
    "env": set_env, "label": set_labels, "expose": add_ports, "volume": add_volumes,
    "workdir": set_workdir,
    "user": lambda c, a: c.__setitem__("User", a[0]),
    "stopsignal": lambda c, a: c.__setitem__("StopSignal", a[0]),
}


def apply(c: dict, instruction: Instruction, args: list[str], shell: list[str], cmd_set: bool) -> None:
    """Change the config part `c` for a metadata instruction (args already expanded)."""
    cmd = instruction.cmd
    if cmd in APPLY:
        APPLY[cmd](c, args)
    elif cmd == "cmd":
        c["Cmd"] = shell_form(args, instruction.json, shell)
    elif cmd == "entrypoint":
        c["Entrypoint"] = shell_form(args, instruction.json, shell) or None
        if not cmd_set:
            c["Cmd"] = None  # Docker: a new ENTRYPOINT drops the base image's CMD
    elif cmd == "shell":
        c["Shell"] = list(args)
    elif cmd == "healthcheck":
        set_healthcheck(c, instruction, shell)
    elif cmd == "onbuild":
        c["OnBuild"] = [*(c.get("OnBuild") or []), trigger_text(instruction)]


def describe(instruction: Instruction, args: list[str]) -> str:
    """The step as `docker history` shows it: keyword, flags, expanded arguments."""
    if instruction.cmd == "onbuild":
        return "ONBUILD " + trigger_text(instruction).split("\n", 1)[0]
    flags = "".join(f + " " for f in instruction.flags)
    if instruction.json:
        return f"{instruction.cmd.upper()} {flags}{json.dumps(args)}"
    if instruction.cmd in ("env", "label"):
        shown = " ".join(f"{k}={v}" for k, v in pairs(args))
    else:
        shown = " ".join(args)
    return f"{instruction.cmd.upper()} {flags}{shown}".rstrip()
