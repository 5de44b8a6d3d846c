"""The builder: from instructions to an image, one cached step at a time.

    FROM base          state = the base image's config and layers
    ARG / ENV ...      state.config changes (no new layer)
    RUN / COPY / ADD   a container or a copy over the layers so far;
                       what it changed becomes one more layer
    ...                after the last step of the target stage, the state
                       is stored as an image and tagged

Each step first computes its cache key (cache.py): the parent's key plus
the step's own inputs. A hit skips the work and takes the saved state; a
miss does the work and saves the new state under that key.

Variables: ARGs before the first FROM are global and only FROM lines see
them; inside a stage, `ARG NAME` brings one in (or declares a new one),
--build-arg overrides defaults, and ENV wins over an ARG of the same name.
RUN steps see the stage's ARGs in their environment, but the image does not
keep them.
"""

import hashlib
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

from .. import imagespec, reference
from ..errors import DockyardError
from ..store import ImageNotFound, Store
from . import cache, checks, execute, parser, steps
from .context import Context
from .expand import ExpandError, Lexer
from .lexer import error_at
from .parser import Instruction


@dataclass
class Options:
    """What `build` was asked for."""
    root: str
    context: str
    dockerfile: str | None = None
    tags: list[str] = field(default_factory=list)
    build_args: dict[str, str] = field(default_factory=dict)
    target: str | None = None
    no_cache: bool = False
    network: str = "host"
    progress: str = "plain"
    pull: bool = False  # ask the registry for each base image even when the store has it


@dataclass
class Stage:
    """FROM ... and the instructions up to the next FROM."""
    index: int
    name: str
    source: Instruction
    instructions: list[Instruction]


@dataclass
class State:
    """A stage while it is built: the image so far, its cache key, its variables."""
    config: dict
    layers: list[dict]
    key: str
    index: int = 0
    args: dict[str, str | None] = field(default_factory=dict)
    cmd_set: bool = False

    @property
    def c(self) -> dict:
        return self.config.setdefault("config", {})

    def env(self) -> dict[str, str]:
        return dict(e.partition("=")[::2] for e in self.c.get("Env") or [])

    def scope(self) -> dict[str, str]:
        """Variables for expansion: set ARGs, then ENV over them."""
        return {**{k: v for k, v in self.args.items() if v is not None}, **self.env()}

    def shell(self) -> list[str]:
        return self.c.get("Shell") or steps.DEFAULT_SHELL


class Builder:
    """Builds one Dockerfile into one image."""

    def __init__(self, options: Options, out: TextIO = sys.stdout) -> None:
        self.options, self.out = options, out
        self.store = Store(options.root)
        self.cache = cache.Cache(self.store)
        self.context = Context(options.context)
        if not options.no_cache:
            self.context.known = self.cache.known_digests(self.context.root)
        self.used_args: set[str] = set()
        self.states: dict[int, State] = {}
        self.step, self.total = 0, 0

    # --8<-- [start:build]
    def build(self) -> imagespec.Image:
        """Parse, build the stages the target needs, store and tag the image."""
        self.dockerfile = parser.parse_file(self.dockerfile_path(), "Dockerfile")
        checks.check_dockerfile(self.dockerfile)
        self.meta, stages = split_stages(self.dockerfile, self.options.build_args)
        self.stages = stages
        wanted = needed(stages, target_stage(stages, self.options.target))
        self.total = sum(1 + len(s.instructions) for s in stages if s.index in wanted)
        self.store.ensure()
        for stage in stages:
            if stage.index in wanted:
                self.states[stage.index] = self.build_stage(stage)
        final = self.states[max(wanted)]
        image = self.store.create_image(final.config, final.layers, self.options.tags)
        self.cache.keep_digests(self.context.root, self.context.known, self.context.seen)
        self.report_unused_args()
        self.say(f"Successfully built {image.id[7:19]}")
        for tag in self.options.tags:
            self.say(f"Successfully tagged {reference.parse(tag).familiar}")
        return image
    # --8<-- [end:build]

    def dockerfile_path(self) -> str:
        path = self.options.dockerfile or os.path.join(self.options.context, "Dockerfile")
        if not os.path.isfile(path):
            raise DockyardError(f"cannot find the Dockerfile at {path}",
                                hint="put a Dockerfile in the context, or name one with -f FILE")
        return path

    def build_stage(self, stage: Stage) -> State:
        """FROM, then each instruction of the stage."""
        state = self.start_stage(stage)
        for instruction in stage.instructions:
            self.begin(instruction.original)
            self.do_step(state, instruction)
        return state

    # --- FROM -----------------------------------------------------------------------

    def start_stage(self, stage: Stage) -> State:
        """Take the base: scratch, an earlier stage, or an image (pulled if need be)."""
        self.begin(stage.source.original)
        base = self.expand(stage.source, stage.source.args[0], self.meta)
        if base.lower() == "scratch":
            state = State(imagespec.new_config(), [], cache.chain("FROM", "scratch"))
        elif (earlier := self.find_stage(base, stage.index)) is not None:
            parent = self.states[earlier]
            state = State(imagespec.new_config(parent.config), list(parent.layers), cache.chain("FROM", parent.key))
        else:
            image = self.base_image(base)
            state = State(imagespec.new_config(image.config), list(image.layers), cache.chain("FROM", image.id))
            self.say(f" ---> {image.id[7:19]}")
        state.index = stage.index
        triggers = state.c.pop("OnBuild", None) or []
        for text in triggers:
            self.say(f"# Executing build trigger: {text.splitlines()[0]}")
            trigger = parser.parse(text, "ONBUILD")
            checks.check_dockerfile(trigger)
            self.do_step(state, trigger.instructions[0])
        return state

    def base_image(self, name: str) -> imagespec.Image:
        """An image from the store, pulled with the registry client if it is not there (or with --pull)."""
        if not self.options.pull:
            try:
                return self.store.resolve(name)
            except ImageNotFound:
                pass
        from ..registry import commands
        try:
            digest = commands.pull_image(self.store, name, out=self.out)
        except DockyardError as err:
            raise DockyardError(f"no such image: {name} (and pulling it failed: {err.problem})",
                                hint="import or pull the base image first, or fix the FROM line") from err
        return self.store.load(digest)

    def find_stage(self, name: str, before: int) -> int | None:
        """The index of an earlier stage called `name` (or numbered so)."""
        for stage in self.stages[:before]:
            if name.lower() == stage.name or name == str(stage.index):
                return stage.index
        return None

    # --- one step -------------------------------------------------------------------

    # --8<-- [start:do_step]
    def do_step(self, state: State, instruction: Instruction) -> None:
        """Apply one instruction to the state, from the cache when its key is known."""
        try:
            if instruction.cmd == "arg":
                return self.declare_args(state, instruction)
            args = steps.expand_args(instruction, state.scope(), self.dockerfile.escape)
            self.warn_ignored_flags(instruction)
            work = execute.Step(self, state, instruction, args)
            key = cache.chain(state.key, steps.describe(instruction, args), *work.inputs())
            entry = None if self.options.no_cache else self.cache.get(key)
            started = time.monotonic()
            if entry is None:
                entry = work.run()
                self.cache.put(key, entry)
                self.say(f" ---> {image_id(entry['config'])[7:19]} ({time.monotonic() - started:.2f}s)")
            else:
                self.say(f" ---> CACHED {image_id(entry['config'])[7:19]}")
            state.config, state.layers, state.key = entry["config"], entry["layers"], key
            state.cmd_set = state.cmd_set or instruction.cmd == "cmd"
        except (steps.StepError, ExpandError) as err:
            raise error_at("Dockerfile", instruction.start_line, getattr(err, "problem", str(err)),
                           getattr(err, "hint", "check the instruction")) from None
    # --8<-- [end:do_step]

    def declare_args(self, state: State, instruction: Instruction) -> None:
        """ARG NAME[=default]: the value comes from --build-arg, the default, or the global ARG."""
        for word in instruction.args:
            name, eq, default = word.partition("=")
            value = self.options.build_args.get(name)
            if value is None and eq:
                value = Lexer(self.dockerfile.escape).word(default, state.scope())
            if value is None:
                value = self.meta.get(name)
            state.args[name] = value
            self.used_args.add(name)
        state.key = cache.chain(state.key, "ARG", instruction.args)

    # --- helpers ---------------------------------------------------------------------

    def expand(self, instruction: Instruction, word: str, env: dict[str, str]) -> str:
        try:
            return Lexer(self.dockerfile.escape).word(word, env)
        except ExpandError as err:
            raise error_at("Dockerfile", instruction.start_line, str(err), "check the ${...} syntax") from None

    def begin(self, text: str) -> None:
        self.step += 1
        self.say(f"Step {self.step}/{self.total} : {text}")

    def say(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def warn_ignored_flags(self, instruction: Instruction) -> None:
        """Say so when a flag that Docker knows does nothing here, rather than pass it silently."""
        for flag in instruction.flags:
            name = flag.lstrip("-").split("=", 1)[0]
            if (instruction.cmd, name) in steps.IGNORED_FLAGS:
                self.say(f"[Warning] {instruction.cmd.upper()} --{name} is not supported yet; ignored")

    def report_unused_args(self) -> None:
        unused = sorted(set(self.options.build_args) - self.used_args - set(self.meta))
        if unused:
            self.say(f"[Warning] One or more build-args {unused} were not consumed")


def image_id(config: dict) -> str:
    """The id the image would have if the build ended after this step (its config's digest)."""
    return "sha256:" + hashlib.sha256(imagespec.canonical(config)).hexdigest()


# --- stages ----------------------------------------------------------------------------

AUTOMATIC_ARGS = {"TARGETOS": "linux", "BUILDOS": "linux"}


def split_stages(dockerfile: parser.Dockerfile, build_args: dict[str, str]) -> tuple[dict[str, Any], list[Stage]]:
    """The global ARGs (with their values) and the stages, in order."""
    arch = imagespec.architecture()
    meta: dict[str, Any] = {**AUTOMATIC_ARGS, "TARGETARCH": arch, "BUILDARCH": arch,
                            "TARGETPLATFORM": f"linux/{arch}", "BUILDPLATFORM": f"linux/{arch}"}
    stages: list[Stage] = []
    for instruction in dockerfile.instructions:
        if instruction.cmd == "from":
            name = instruction.args[2].lower() if len(instruction.args) == 3 else ""
            stages.append(Stage(len(stages), name, instruction, []))
        elif stages:
            stages[-1].instructions.append(instruction)
        elif instruction.cmd == "arg":
            declare_global(meta, instruction, build_args, dockerfile.escape)
        else:
            raise error_at(dockerfile.filename, instruction.start_line,
                           f"{instruction.cmd.upper()} before the first FROM",
                           hint="only ARG may come before FROM: start the stage with FROM IMAGE")
    if not stages:
        raise error_at(dockerfile.filename, dockerfile.instructions[-1].start_line,
                       "the Dockerfile has no FROM", hint="start it with FROM IMAGE (or FROM scratch)")
    return meta, stages


def declare_global(meta: dict[str, Any], instruction: Instruction, build_args: dict[str, str],
                   escape: str) -> None:
    for word in instruction.args:
        name, eq, default = word.partition("=")
        value = build_args.get(name)
        if value is None and eq:
            value = Lexer(escape).word(default, {k: v for k, v in meta.items() if v is not None})
        meta[name] = value


def target_stage(stages: list[Stage], target: str | None) -> int:
    if target is None:
        return stages[-1].index
    for stage in stages:
        if stage.name == target.lower():
            return stage.index
    raise DockyardError(f"target stage {target!r} could not be found",
                        hint="name one of: " + ", ".join(s.name for s in stages if s.name))


def needed(stages: list[Stage], target: int) -> set[int]:
    """The target stage and the stages it reads from (FROM or COPY --from), transitively."""
    names = {s.name: s.index for s in stages if s.name} | {str(s.index): s.index for s in stages}
    wanted, todo = set(), [target]
    while todo:
        index = todo.pop()
        if index in wanted:
            continue
        wanted.add(index)
        stage = stages[index]
        refs = [stage.source.args[0]] + [i.options.get("from", "") for i in stage.instructions]
        if any("$" in r for r in refs):
            todo += range(index)  # a computed name: keep every earlier stage
        todo += [names[r.lower()] for r in refs if r.lower() in names and names[r.lower()] < index]
    return wanted
