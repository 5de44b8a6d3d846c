# chapter: 05
"""Chapter 5: the image config, and how `run` turns it into a process.

An image carries defaults for the containers made from it: Env, Entrypoint
and Cmd, WorkingDir, User, Volumes, ExposedPorts, StopSignal, Labels. `run`
starts from these and lets the command line override them, with Docker's
rules for the command:

    argv = (--entrypoint, or the image's Entrypoint) + (CMD args, or the image's Cmd)
    ... except that --entrypoint also drops the image's Cmd.

`import -c` and `commit -c` change a config with Dockerfile syntax
(`CMD ["sh"]`, `ENV A=1`, `WORKDIR /srv` ...), so chapter 7 reuses this.
"""

import json
import os
import shlex

from .errors import DockyardError, UsageError

SIMPLE = {"WORKDIR": "WorkingDir", "USER": "User", "STOPSIGNAL": "StopSignal"}


def apply_changes(config: dict, changes: list[str]) -> None:
    """Apply Dockerfile-style `-c` changes to an image config's "config" part."""
    cmd_set = False
    for change in changes:
        instruction, _, rest = change.strip().partition(" ")
        apply_change(config, instruction.upper(), rest.strip())
        cmd_set = cmd_set or instruction.upper() == "CMD"
        if instruction.upper() == "ENTRYPOINT" and not cmd_set:
            config["Cmd"] = None  # as in a Dockerfile: a new ENTRYPOINT drops the old Cmd, unless a CMD came first


def apply_change(c: dict, instruction: str, rest: str) -> None:
    """One instruction: CMD, ENTRYPOINT, ENV, LABEL, EXPOSE, VOLUME, WORKDIR, USER or STOPSIGNAL."""
    if instruction in ("CMD", "ENTRYPOINT"):
        c["Cmd" if instruction == "CMD" else "Entrypoint"] = command_form(rest)
    elif instruction in SIMPLE:
        c[SIMPLE[instruction]] = rest
    elif instruction == "ENV":
        for key, value in pairs(rest, legacy=True).items():
            c["Env"] = [e for e in c.get("Env") or [] if e.split("=", 1)[0] != key] + [f"{key}={value}"]
    elif instruction == "LABEL":
        c["Labels"] = {**(c.get("Labels") or {}), **pairs(rest, legacy=False)}
    elif instruction == "EXPOSE":
        ports = {p if "/" in p else f"{p}/tcp": {} for p in rest.split()}
        c["ExposedPorts"] = {**(c.get("ExposedPorts") or {}), **ports}
    elif instruction == "VOLUME":
        paths = json_list(rest) if rest.startswith("[") else rest.split()
        c["Volumes"] = {**(c.get("Volumes") or {}), **{p: {} for p in paths}}
    else:
        raise UsageError(f"unsupported change instruction {instruction!r}",
                         hint="use CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME or WORKDIR")


def command_form(text: str) -> list[str]:
    """`["a", "b"]` (exec form) as is; anything else (shell form) runs under /bin/sh -c."""
    if text.startswith("["):
        try:
            return json_list(text)
        except UsageError:
            pass  # Docker treats a malformed JSON array as shell form
    return ["/bin/sh", "-c", text]


def json_list(text: str) -> list[str]:
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"not a JSON list of strings: {text}", hint='write it as ["a", "b"]')
    return value


def pairs(text: str, legacy: bool) -> dict[str, str]:
    """`K=V K2="V 2"`; for ENV also the old `K V` form."""
    words = shlex.split(text)
    if legacy and words and "=" not in words[0]:
        return {words[0]: text.split(None, 1)[1] if len(words) > 1 else ""}
    result = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not key or not sep:
            raise UsageError(f"expected KEY=VALUE, got {word!r}", hint="e.g. -c 'ENV GREETING=hello'")
        result[key] = value
    return result


# --- at run time ------------------------------------------------------------------

# --8<-- [start:command_line]
def command_line(config: dict, entrypoint: str | None, args: list[str]) -> list[str]:
    """The container's argv from the image's Entrypoint/Cmd and the command line."""
    # >>> exercise 5.3: Entrypoint and Cmd make the command, as in Docker
    # hint: the argv is the image's Entrypoint followed by the arguments given on the command line, or
    # hint: by the image's Cmd if none were given. --entrypoint X replaces the Entrypoint with [X] ("" with
    # hint: nothing) and drops the image's Cmd. An empty argv is a UsageError "no command specified".
    # test: test_image_run.py::test_entrypoint_and_cmd_combine_as_in_docker
    # test: test_image_run.py::test_an_image_without_a_command_needs_one_on_the_command_line
    # stops: every image run
    image_entrypoint = config.get("Entrypoint") or []
    image_cmd = config.get("Cmd") or []
    if entrypoint is not None:  # --entrypoint replaces the Entrypoint and drops the image's Cmd
        image_entrypoint, image_cmd = ([entrypoint] if entrypoint else []), []
    argv = list(image_entrypoint) + (list(args) if args else list(image_cmd))
    if not argv:
        raise UsageError("no command specified",
                         hint="the image has no Cmd or Entrypoint: give a command after the image name")
    return argv
    # <<< exercise 5.3
# --8<-- [end:command_line]


def container_config(image: dict, entrypoint: str | None, args: list[str], env: list[str],
                     workdir: str, user: str) -> dict:
    """The container's own config, as Docker records it: the image's, with what `run` overrode."""
    config = json.loads(json.dumps(image))
    if entrypoint is not None:  # as in command_line: the image's Cmd goes with its Entrypoint
        config["Entrypoint"], config["Cmd"] = ([entrypoint] if entrypoint else []), list(args)
    elif args:
        config["Cmd"] = list(args)
    config["Env"] = merge_env(env, image.get("Env") or [])
    config["WorkingDir"] = workdir or image.get("WorkingDir", "")
    config["User"] = user or image.get("User", "")
    return {key: value for key, value in config.items() if value not in ([], "", None)}


def merge_env(given: list[str], image: list[str]) -> list[str]:
    """Docker's rule: the `-e` values, then each of the image's Env that `-e` does not set."""
    given = [item if "=" in item else f"{item}={os.environ[item]}" for item in given
             if "=" in item or item in os.environ]  # `-e KEY` takes the engine's value, if any
    keys = {item.partition("=")[0] for item in given}
    return given + [item for item in image if item.partition("=")[0] not in keys]


def environment(config: dict, base: dict[str, str]) -> dict[str, str]:
    """The image's Env over the engine's defaults; `-e` is applied after this by the caller."""
    env = dict(base)
    for item in config.get("Env") or []:
        key, _, value = item.partition("=")
        env[key] = value
    return env


def lookup_user(user: str, passwd: str, group: str) -> tuple[int, int, list[int], str]:
    """uid, gid, extra gids and home for `user` ('name', 'uid', 'name:group', 'uid:gid')."""
    # >>> exercise 5.4: the image's USER, looked up in the image's own /etc/passwd
    # hint: USER is "name", "uid", "name:group" or "uid:gid". Find the passwd row (parse_db) by name;
    # hint: an unknown name that is not a number is a DockyardError. uid and gid come from the row (a
    # hint: bare uid not in passwd gets gid 0), home is field 5; a group part overrides the gid
    # hint: (lookup_group); the extra gids are the groups whose member list (field 3) names the user.
    # test: test_image_run.py::test_the_images_user_is_looked_up_in_its_own_passwd_file
    # test: test_image_run.py::test_an_unknown_user_is_an_error_with_a_hint
    # test: test_image_run.py::test_commit_records_the_command_env_workdir_and_user_the_container_ran_with
    name, _, group_name = user.partition(":")
    users = parse_db(passwd)
    groups = parse_db(group)
    entry = next((u for u in users if u[0] == name), None)
    if entry is None and not name.isdigit():
        raise DockyardError(f"unable to find user {name}: no matching entries in passwd file",
                            hint="use a numeric uid, or a user that the image's /etc/passwd lists")
    if entry is None:
        entry = next((u for u in users if u[2] == name), None)
    uid = int(name) if name.isdigit() else int(entry[2])
    gid = int(entry[3]) if entry else 0
    home = entry[5] if entry and len(entry) > 5 else "/"
    if group_name:
        gid = lookup_group(group_name, groups)
    extra = sorted({int(g[2]) for g in groups if len(g) > 3 and entry and entry[0] in g[3].split(",")})
    return uid, gid, [g for g in extra if g != gid], home
    # <<< exercise 5.4


def lookup_group(name: str, groups: list[list[str]]) -> int:
    if name.isdigit():
        return int(name)
    for entry in groups:
        if entry[0] == name:
            return int(entry[2])
    raise DockyardError(f"unable to find group {name}: no matching entries in group file",
                        hint="use a numeric gid, or a group that the image's /etc/group lists")


def parse_db(text: str) -> list[list[str]]:
    """/etc/passwd or /etc/group as lists of fields (malformed lines skipped)."""
    rows = [line.split(":") for line in text.splitlines() if line and not line.startswith("#")]
    return [r for r in rows if len(r) >= 3 and r[2].isdigit()]
