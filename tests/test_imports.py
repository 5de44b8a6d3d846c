"""The engine's modules form layers: no import cycle, and nothing below the CLI imports it.

An import cycle means two modules cannot be read, or tested, one without the
other; a function-level import that closes a cycle only hides it until a
caller happens to import them in the other order. So every import counts,
at the top of a module or inside a function. These tests read the sources
(they run nothing) and name the cycle or the import they find.
"""

import ast
import os

import pytest

FINAL = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "final")
TOP = {"cli", "__main__"}   # the command line: it may import anything, nothing imports it
# Known cycles, each with why it is still there (none today).
ALLOWED_CYCLES: list[set[str]] = []


def module_name(path: str) -> str:
    relative = os.path.relpath(path, FINAL)[:-3].replace(os.sep, ".")
    return relative.removesuffix(".__init__") if relative != "__init__" else ""


def imports_of(path: str, name: str, module_level_only: bool) -> set[str]:
    """The modules of final/ that the module at `path` imports (relative imports only)."""
    tree = ast.parse(open(path).read(), path)
    package = name.rsplit(".", 1)[0] if "." in name or path.endswith("__init__.py") else ""
    if path.endswith("__init__.py"):
        package = name
    nodes = tree.body if module_level_only else list(ast.walk(tree))
    if module_level_only:  # `if TYPE_CHECKING:` blocks run no import
        nodes = [n for n in nodes if not (isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test))]
    found = set()
    for node in nodes:
        if not isinstance(node, ast.ImportFrom) or not node.level:
            continue
        base = package.split(".") if package else []
        base = base[:len(base) - (node.level - 1)] if node.level > 1 else base
        target = ".".join([*base, *(node.module.split(".") if node.module else [])])
        if node.module:
            found.add(target)
        for alias in node.names:  # `from . import x` imports module x
            candidate = ".".join(p for p in (target, alias.name) if p)
            if os.path.exists(os.path.join(FINAL, *candidate.split("."))  + ".py") or \
               os.path.isdir(os.path.join(FINAL, *candidate.split("."))):
                found.add(candidate)
    return {m for m in found if m} - {name}


def graph(module_level_only: bool) -> dict[str, set[str]]:
    modules = {}
    for directory, subdirs, files in os.walk(FINAL):
        subdirs[:] = [d for d in subdirs if d != "__pycache__"]
        for file in files:
            if file.endswith(".py"):
                path = os.path.join(directory, file)
                modules[module_name(path)] = imports_of(path, module_name(path), module_level_only)
    return {name: {m for m in deps if m in modules} for name, deps in modules.items()}


def without_allowed(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    """The graph less the edges inside an allowed cycle."""
    return {name: {m for m in deps if not any({name, m} <= group for group in ALLOWED_CYCLES)}
            for name, deps in edges.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph, as a list of modules, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if not state.get(nxt) and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if not state.get(node) and (cycle := visit(node)):
            return cycle
    return None


def test_no_module_of_final_imports_another_that_imports_it_back_at_import_time():
    cycle = find_cycle(graph(module_level_only=True))
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_import_of_final_closes_a_cycle_not_even_one_inside_a_function():
    cycle = find_cycle(without_allowed(graph(module_level_only=False)))
    assert cycle is None, "import cycle (some imports inside functions): " + " -> ".join(cycle)


def test_the_cycle_check_sees_imports_inside_functions(tmp_path):
    """The checker itself: a cycle closed by a function-level import is found."""
    (tmp_path / "a.py").write_text("from .b import later\n")
    (tmp_path / "b.py").write_text("def later():\n    from .a import x\n")
    edges = {name: imports_of(str(tmp_path / f"{name}.py"), name, module_level_only=False) for name in "ab"}
    assert find_cycle(edges) in (["a", "b", "a"], ["b", "a", "b"])
    assert find_cycle({name: imports_of(str(tmp_path / f"{name}.py"), name, module_level_only=True)
                       for name in "ab"}) is None


def test_no_module_below_the_command_line_imports_the_cli():
    offenders = [name for name, deps in graph(module_level_only=False).items()
                 if name not in TOP and deps & TOP]
    assert not offenders, f"these modules import the CLI layer: {offenders}"


def loaded_with(first: set[str], edges: dict[str, set[str]]) -> set[str]:
    """The modules `first`, and every module that loading them loads (following `edges`)."""
    reached = set(first)
    todo = list(reached)
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in reached:
                reached.add(nxt)
                todo.append(nxt)
    return reached


def test_the_runtime_imports_nothing_of_the_engine():
    engine = {"containers", "container", "images", "image_run", "store", "volumes", "request", "monitor"}
    # What runtime.py imports anywhere, and what those modules import when loaded.
    reached = loaded_with(imports_of(os.path.join(FINAL, "runtime.py"), "runtime", module_level_only=False),
                          graph(module_level_only=True))
    assert not reached & engine, f"the runtime reaches engine modules: {sorted(reached & engine)}"


def command_tables() -> list[str]:
    """The modules that cli.py lists in TABLES (`TABLES += ["info", "stats"]` ...), read from its source."""
    tree = ast.parse(open(os.path.join(FINAL, "cli.py")).read())
    return [element.value for node in ast.walk(tree)
            if isinstance(node, ast.AugAssign) and getattr(node.target, "id", "") == "TABLES"
            for element in node.value.elts]


def test_the_command_tables_load_none_of_a_containers_machinery():
    """To find a command, the CLI imports table after table (cli.commands): a table that imports the
    records or the runtime at its top makes every command that it searches past pay for them."""
    machinery = {"containers", "runtime", "layers", "request", "store"}
    edges = graph(module_level_only=True)
    tables = command_tables()
    assert "running_commands" in tables and "container_commands" in tables  # the reading of cli.py works
    heavy = {table: sorted(loaded_with({table}, edges) & machinery) for table in tables}
    heavy = {table: modules for table, modules in heavy.items() if modules}
    assert not heavy, f"command tables that load machinery when imported (import it in the handler): {heavy}"
