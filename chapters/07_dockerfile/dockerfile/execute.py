"""Doing one step: a metadata change, a RUN container, or a COPY/ADD.

A `Step` knows its cache inputs before it runs (`inputs`), so the builder
can look the key up first, and produces the state after it (`run`): the new
image config and the layer list, which is what the cache stores.

    RUN    the command runs in a chapter 02-04 container (containers.run) whose
           root is an overlay of the layers so far; its upper dir is the layer
    COPY   the files are written into the same kind of overlay
    ADD    like COPY, plus URLs (downloaded here) and local tar archives
"""

import copy as deepcopy
import hashlib
import os
import posixpath
import shutil
from typing import Any

from .. import config as settings, imagespec
from ..errors import DockyardError
from . import copy, steps
from .context import Context
from .expand import Lexer
from .ignore import Matcher
from .parser import HEREDOC, Heredoc, Instruction, heredoc_of


class Step:
    """One instruction of one stage, with its arguments expanded."""

    def __init__(self, builder: Any, state: Any, instruction: Instruction, args: list[str]) -> None:
        self.builder, self.state, self.instruction, self.args = builder, state, instruction, args
        self.temp: list[str] = []
        self.plan = self.copy_plan() if instruction.cmd in ("copy", "add") else None

    def inputs(self) -> list[Any]:
        """What the step's result depends on besides its parent and its text."""
        cmd = self.instruction.cmd
        if cmd == "run":
            args = sorted((k, v) for k, v in self.state.args.items() if v is not None)
            return [args, self.state.shell(), [vars(h) for h in self.instruction.heredocs],
                    self.state.c.get("User", ""), self.state.c.get("WorkingDir", "")]
        if self.plan is not None:
            return [self.plan.dest, [(w, ctx.checksum([rel])) for ctx, w, rel in self.plan.items],
                    self.from_key, self.plan.from_patterns, self.plan.chown, self.plan.chmod]
        return []

    def run(self) -> dict:
        """Do the step; return the new state: {"config": ..., "layers": [...]}."""
        config, layers = deepcopy.deepcopy(self.state.config), list(self.state.layers)
        created_by = steps.describe(self.instruction, self.args)
        try:
            if self.instruction.cmd == "run":
                layer, diff_id = self.run_command()
            elif self.plan is not None:
                layer, diff_id = self.copy_files()
            else:
                steps.apply(config.setdefault("config", {}), self.instruction, self.args,
                            self.state.shell(), self.state.cmd_set)
                if self.instruction.cmd == "maintainer":
                    config["author"] = self.args[0]
                layer, diff_id = None, None
        finally:
            for path in self.temp:
                shutil.rmtree(path, ignore_errors=True)
        if layer is not None:
            layers.append(layer)
        imagespec.add_layer(config, diff_id, created_by + (" # buildkit" if layer else ""),
                            "buildkit.dockerfile.v0")
        return {"config": config, "layers": layers}

    # --- RUN ---------------------------------------------------------------------------

    def run_command(self) -> tuple[dict, str]:
        """Run the command in a container over the layers so far; its upper dir is the layer."""
        # Imported here, not above: a build whose every step comes from the cache runs no container
        # and mounts nothing, and should not pay for loading that machinery (a third of its time).
        from .. import containers, image_run, request
        c, options = self.state.c, self.builder.options
        argv = run_argv(self.instruction, self.state.shell())
        env = {"PATH": settings.DEFAULT_PATH, "HOME": settings.DEFAULT_HOME, **self.state.scope()}
        lowers = self.lowers() or [image_run.empty_layer(self.builder.store)]
        spec = request.Request(rootfs=lowers[0], argv=argv, env=env, workdir=c.get("WorkingDir") or "/",
                            root=options.root, network=options.network, lowers=lowers,
                            user=c.get("User") or "")
        spec.hostname = spec.id[:12]
        containers.create(spec)  # a container record with a writable layer of its own
        spec.rootfs = os.path.join(containers.directory(spec.root, spec.id), "init")
        try:
            code = containers.run(spec)
            if code != 0:
                raise BuildFailed(f"the command {argv_text(argv)} returned a non-zero code: {code}",
                                  hint="its output is above; fix the RUN line and build again", exit_code=code)
            return self.commit(os.path.join(containers.directory(spec.root, spec.id), "upper"))
        finally:
            containers.remove(spec.root, spec.id)

    def lowers(self) -> list[str]:
        """The unpacked directories of the layers so far, top first (as overlay wants)."""
        diff_ids = self.state.config["rootfs"]["diff_ids"]
        store = self.builder.store
        return store.unpack_layers(zip(self.state.layers, diff_ids))[::-1]

    def commit(self, upper: str) -> tuple[dict, str]:
        """Store the step's upper dir as a layer blob and keep it unpacked for the next steps."""
        from . import sandbox  # only a step that runs needs it (see run_command)
        descriptor, diff_id = self.builder.store.write_layer(upper, upper=True)
        sandbox.take_upper(upper, self.builder.store.layer_dir(diff_id))
        return descriptor, diff_id

    # --- COPY and ADD --------------------------------------------------------------------

    def copy_plan(self) -> copy.Plan:
        """Where each source comes from and where it goes."""
        options, sources, dest = self.instruction.options, self.args[:-1], self.args[-1]
        workdir = self.state.c.get("WorkingDir") or "/"
        target = posixpath.join(workdir, dest) + ("/" if dest.endswith("/") and dest != "/" else "")
        plan = copy.Plan(target, chown=self.expand(options.get("chown")),
                         chmod=copy.parse_chmod(self.expand(options.get("chmod"))),
                         extract=self.instruction.cmd == "add")
        self.from_key = None
        if options.get("from"):
            plan.from_lowers, self.from_key = self.stage_layers(self.expand(options["from"]))
        for source in sources:
            self.add_source(plan, source)
        if len(sources) > 1 and not dest.endswith("/"):
            raise steps.StepError(f"When using {self.instruction.cmd.upper()} with more than one source "
                                  "file, the destination must be a directory and end with a /",
                                  hint=f"write the destination as {dest}/")
        return plan

    def add_source(self, plan: copy.Plan, source: str) -> None:
        if HEREDOC.match(source) and (doc := self.heredoc(source)) is not None:
            plan.items.append(self.heredoc_item(doc))
        elif self.instruction.cmd == "add" and source.startswith(("http://", "https://")):
            plan.items.append(self.download(source, plan))
        elif plan.from_lowers is not None:
            plan.from_patterns.append(source)
        else:
            plan.items += [(self.builder.context, w, rel) for w, rel in self.builder.context.sources(source)]

    def heredoc(self, word: str) -> Heredoc | None:
        found = heredoc_of(word)
        return next((h for h in self.instruction.heredocs if found and h.name == found.name), None)

    def heredoc_item(self, doc: Heredoc) -> tuple[Context, str, str]:
        """A heredoc as a file (expanded unless its delimiter was quoted)."""
        content = "".join(line.lstrip("\t") for line in doc.content.splitlines(True)) if doc.chomp else doc.content
        if doc.expand:
            content = Lexer(self.builder.dockerfile.escape, raw_quotes=True, raw_escapes=True).word(
                content, self.state.scope())
        directory = self.scratch_dir()
        with open(os.path.join(directory, doc.name), "w") as f:
            f.write(content)
        os.chmod(os.path.join(directory, doc.name), 0o644)
        return Context(directory, Matcher([])), doc.name, doc.name

    def download(self, url: str, plan: copy.Plan) -> tuple[Context, str, str]:
        """ADD URL: fetch it (mode 0600, as Docker does), checking --checksum if given."""
        import urllib.parse
        import urllib.request
        name = posixpath.basename(urllib.parse.urlparse(url).path) or "index.html"
        path = os.path.join(self.scratch_dir(), name)
        try:
            with urllib.request.urlopen(url, timeout=60) as response, open(path, "wb") as f:
                shutil.copyfileobj(response, f)
        except OSError as err:
            raise steps.StepError(f"cannot download {url}: {err}", hint="check the URL and the network")
        os.chmod(path, 0o600)
        expected = self.instruction.options.get("checksum")
        if expected and "sha256:" + hashlib.sha256(open(path, "rb").read()).hexdigest() != expected:
            raise steps.StepError(f"the checksum of {url} is not {expected}", hint="check --checksum")
        return Context(os.path.dirname(path), Matcher([])), name, name

    def stage_layers(self, name: str) -> tuple[list[str], str]:
        """COPY --from: an earlier stage's layers (or an image's), top first, and its key."""
        index = self.builder.find_stage(name, self.state.index)
        if index is not None:
            source = self.builder.states[index]
            layers, diff_ids, key = source.layers, source.config["rootfs"]["diff_ids"], source.key
        else:
            image = self.builder.base_image(name)
            layers, diff_ids, key = image.layers, image.diff_ids, image.id
        store = self.builder.store
        return store.unpack_layers(zip(layers, diff_ids))[::-1], key

    def copy_files(self) -> tuple[dict, str]:
        from . import sandbox  # only a step that runs needs it (see run_command)
        box = sandbox.Sandbox(self.builder.store.tmp, self.lowers())
        self.plan.scratch = os.path.join(box.directory, "from")
        try:
            box.run(lambda merged: copy.apply(self.plan, merged))
            return self.commit(box.upper)
        finally:
            box.remove()

    # --- helpers ---------------------------------------------------------------------------

    def expand(self, text: str | None) -> str | None:
        return None if text is None else Lexer(self.builder.dockerfile.escape).word(text, self.state.scope())

    def scratch_dir(self) -> str:
        path = self.builder.store.temp_path()
        os.makedirs(path)
        self.temp.append(path)
        return path


class BuildFailed(DockyardError):
    """A RUN failed; the build exits with the command's own status."""

    def __init__(self, problem: str, hint: str, exit_code: int = 1) -> None:
        super().__init__(problem, hint)
        self.exit_code = exit_code


def run_argv(instruction: Instruction, shell: list[str]) -> list[str]:
    """RUN's argv: exec form as is; shell form (heredocs included) under the shell."""
    if instruction.json:
        return list(instruction.args)
    script, docs = instruction.args[0], instruction.heredocs
    if len(docs) == 1 and HEREDOC.match(script.strip()):
        body = docs[0].content  # `RUN <<EOF`: the heredoc is the script itself
        if docs[0].chomp:
            body = "".join(line.lstrip("\t") for line in body.splitlines(True))
        return [*shell, body] if not body.startswith("#!") else [*shell, shebang_script(body)]
    if docs:
        script += "\n" + "".join(f"{doc.content}{doc.name}\n" for doc in docs)
    return [*shell, script]


def shebang_script(body: str) -> str:
    """A script with its own interpreter (#!): write it to a file and run that."""
    marker = "DOCKYARD_HEREDOC_END"
    return (f'f=$(mktemp) && cat > "$f" <<\'{marker}\'\n{body}{marker}\n'
            'chmod +x "$f" && "$f"; s=$?; rm -f "$f"; exit $s')


def argv_text(argv: list[str]) -> str:
    return "'" + " ".join(argv) + "'"
