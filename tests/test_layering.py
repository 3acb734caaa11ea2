"""The layering, checked on the source. The package's folders are its layers, bottom up:

    foundation (errors, config, clock, files, faults, models, inputs, redaction, _native: the modules at the top)
    storage/ -> embedding/ -> learning/ -> retrieval/ -> service/ -> sharing/ -> app/ -> transport/ -> cli/

A module imports only from its own layer or those below it; the MCP SDK is imported only by transport/ and cli/
(app/ is the composition root: ``wiring`` builds the store, service and node without it; transport.app the server);
storage/ uses nothing of ours but errors, files and faults; DuckDB (and our DuckDB store, storage/duckdb/) is
imported only inside storage/duckdb/ and by app.wiring, which opens it. Every module says what it offers in
``__all__``, and a module of another folder imports only those names. A new import across a layer fails here,
naming the module and what it imported (imports inside functions count: a lazy import is still a dependency)."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "server" / "hebbian_memory"
# The composition point: the only module outside storage/duckdb/ that may open the DuckDB store. Everything else
# sees storage through the Protocols of storage/base.py.
COMPOSITION = {"app.wiring"}
LAYERS = ["storage", "embedding", "learning", "retrieval", "service", "sharing", "app", "transport", "cli"]
SDK_USERS = {"transport", "cli"}
RANK = {name: rank for rank, name in enumerate(LAYERS, start=1)} | {"__main__": len(LAYERS)}


def modules(root: Path = PACKAGE) -> dict[str, Path]:
    """Every module by its dotted name under the package ('storage.core', 'transport.tools', ...)."""
    return {
        ".".join(path.relative_to(root).with_suffix("").parts): path
        for path in root.rglob("*.py")
        if "__pycache__" not in path.parts
    }


def imports(path: Path) -> list[tuple[str, list[str]]]:
    """Each import in ``path`` as (module, the names taken from it); `import x.y` takes no names."""
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.extend((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, [alias.name for alias in node.names]))
    return found


def imported(path: Path) -> set[str]:
    """The layers each import in ``path`` reaches: 'mcp' for the SDK, 'storage', 'transport', ... for ours, and
    for a module at the top of the package its own name ('config', 'errors', ...)."""
    found: set[str] = set()
    for module, names in imports(path):
        parts = module.split(".")
        if parts[0] in {"mcp", "mcp_types"}:
            found.add("mcp")
        elif parts[0] == "hebbian_memory":
            found.update([parts[1]] if len(parts) > 1 else names)
    return found


def layer(module: str) -> str:
    return module.split(".", maxsplit=1)[0]


def rank(name: str) -> int:
    return RANK.get(layer(name), 0)


def public(path: Path) -> list[str] | None:
    """A module's ``__all__``, or None when it has none."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        targets = (
            node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        )
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            assert isinstance(node, ast.Assign | ast.AnnAssign)
            assert isinstance(node.value, ast.List | ast.Tuple)
            return [e.value for e in node.value.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    return None


def upward(root: Path = PACKAGE) -> dict[str, list[str]]:
    return {
        module: sorted(name for name in imported(path) - {"mcp"} if rank(name) > rank(module))
        for module, path in modules(root).items()
        if any(rank(name) > rank(module) for name in imported(path) - {"mcp"})
    }


def test_only_the_transport_and_the_cli_import_the_mcp_sdk() -> None:
    offenders = sorted(
        module for module, path in modules().items() if layer(module) not in SDK_USERS and "mcp" in imported(path)
    )
    assert offenders == [], "only transport/ and cli/ may import the MCP SDK"


def test_no_module_imports_a_layer_above_its_own() -> None:
    assert upward() == {}, f"layers bottom up: foundation, {', '.join(LAYERS)}"


def test_storage_imports_nothing_of_ours_but_errors_files_and_faults() -> None:
    allowed = {"storage", "errors", "files", "faults"}
    offenders = {
        module: sorted(imported(path) - allowed - {"mcp"})
        for module, path in modules().items()
        if layer(module) == "storage" and imported(path) - allowed
    }
    assert offenders == {}, "storage/ may use only storage, errors, files and faults of ours"


def reaches_duckdb(path: Path) -> bool:
    """Whether ``path`` imports DuckDB itself or our DuckDB store (``storage.duckdb``), by any spelling."""
    for module, names in imports(path):
        if module.split(".")[0] == "duckdb" or module.startswith("hebbian_memory.storage.duckdb"):
            return True
        if module == "hebbian_memory.storage" and "duckdb" in names:
            return True
    return False


def duckdb_users(root: Path = PACKAGE) -> list[str]:
    """Modules outside storage/duckdb/ and the composition points that import DuckDB or our DuckDB store."""
    return sorted(
        module
        for module, path in modules(root).items()
        if module.split(".")[:2] != ["storage", "duckdb"] and module not in COMPOSITION and reaches_duckdb(path)
    )


def test_only_the_duckdb_store_and_the_composition_points_import_duckdb() -> None:
    assert duckdb_users() == [], (
        "DuckDB stays behind the storage Protocols: use storage.base/storage.rows, or open the store in "
        f"a composition point ({', '.join(sorted(COMPOSITION))})"
    )


POSTGRES_DRIVERS = {"psycopg", "psycopg_pool", "pgvector"}


def postgres_users(root: Path = PACKAGE) -> list[str]:
    """Modules outside storage/postgres/ and the composition points that import the PostgreSQL drivers or our
    PostgreSQL store."""

    def reaches(path: Path) -> bool:
        return any(
            module.split(".")[0] in POSTGRES_DRIVERS
            or module.startswith("hebbian_memory.storage.postgres")
            or (module == "hebbian_memory.storage" and "postgres" in names)
            for module, names in imports(path)
        )

    return sorted(
        module
        for module, path in modules(root).items()
        if module.split(".")[:2] != ["storage", "postgres"] and module not in COMPOSITION and reaches(path)
    )


def test_only_the_postgres_store_and_the_composition_points_import_its_drivers(tmp_path: Path) -> None:
    assert postgres_users() == [], "PostgreSQL stays behind the storage Protocols, as DuckDB does"
    plant = {"service/direct.py": "import psycopg\n", "cli/lazy.py": "def f():\n    from pgvector.psycopg import x\n"}
    for rel, text in plant.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    assert postgres_users(tmp_path) == ["cli.lazy", "service.direct"]


def test_the_duckdb_check_sees_every_spelling(tmp_path: Path) -> None:
    plant = {
        "storage/duckdb/store.py": "import duckdb\n",
        "app/wiring.py": "from hebbian_memory.storage.duckdb import Store\n",
        "service/direct.py": "import duckdb\n",
        "service/lazy.py": "def f():\n    from duckdb import connect\n",
        "storage/base.py": "from hebbian_memory.storage.duckdb.store import Store\n",
        "sharing/node.py": "from hebbian_memory.storage.duckdb import Store\n",
        "retrieval/sub.py": "from hebbian_memory.storage import duckdb\n",
        "learning/fine.py": "from hebbian_memory.storage import Link\n",
    }
    for name, text in plant.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert duckdb_users(tmp_path) == ["retrieval.sub", "service.direct", "service.lazy", "sharing.node", "storage.base"]


def test_every_module_declares_what_it_offers() -> None:
    missing = sorted(module for module, path in modules().items() if public(path) is None)
    assert missing == [], "every module lists its public names in __all__"
    undefined = {
        module: sorted(set(names) - defined(path))
        for module, path in modules().items()
        if (names := public(path)) and set(names) - defined(path)
    }
    assert undefined == {}, "__all__ names only what the module defines or imports"


def defined(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.ImportFrom):
            names.update(alias.asname or alias.name for alias in node.names)
    return names


def test_other_folders_import_only_public_names() -> None:
    found = modules()
    offenders: dict[str, list[str]] = {}
    for module, path in found.items():
        for source, names in imports(path):
            target = source.removeprefix("hebbian_memory.")
            if not source.startswith("hebbian_memory.") or target not in found or layer(target) == layer(module):
                continue
            offered = public(found[target]) or []
            hidden = [n for n in names if n not in offered and f"{target}.{n}" not in found]
            if hidden:
                offenders.setdefault(module, []).extend(f"{target}.{n}" for n in hidden)
    assert offenders == {}, "a name another folder uses belongs in its module's __all__"


def test_the_checks_see_imports_inside_functions_and_upward_ones(tmp_path: Path) -> None:
    lazy = tmp_path / "storage" / "lazy.py"
    lazy.parent.mkdir()
    lazy.write_text("def f():\n    from mcp import Client\n    from hebbian_memory.transport.tools import x\n")
    assert imported(lazy) == {"mcp", "transport"}
    assert upward(tmp_path) == {"storage.lazy": ["transport"]}


def test_the_wiring_never_imports_the_sdk() -> None:
    """One-off commands build their node through app.wiring and must not pay for the SDK."""
    assert "mcp" not in imported(PACKAGE / "app" / "wiring.py")
    assert "server" not in {m.rsplit(".", 1)[-1] for m, _ in imports(PACKAGE / "app" / "wiring.py")}


def builds(path: Path) -> set[str]:
    """What ``path`` constructs of the store and the service: 'Store.open', 'MemoryService'."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name) and node.func.id == "MemoryService":
                found.add("MemoryService")
            elif (
                isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and (node.func.value.id, node.func.attr) == ("Store", "open")
            ):
                found.add("Store.open")
    return found


def test_only_the_composition_root_builds_the_store_and_the_service() -> None:
    offenders = {
        module: sorted(built)
        for module, path in modules().items()
        if layer(module) != "app" and (built := builds(path))
    }
    assert offenders == {}, "build the store and the service through app.wiring (the CLI's reindex included)"
    assert builds(PACKAGE / "app" / "wiring.py") == {"Store.open", "MemoryService"}
