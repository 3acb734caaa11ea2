"""The layering, checked on the source: the MCP SDK is imported only by the transport (the server, its tools,
resources and sessions) and the CLI, the storage layer imports nothing of the
layers above it, and the service (``memory`` and what it runs) never imports the transport or the sharing layer.
A new import across a layer fails here, naming the module and what it imported."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "server" / "hebbian_memory"
TRANSPORT = {"app", "tools", "resources", "sessions", "handshake", "tool_errors"}
SHARING_AND_UP = TRANSPORT | {"sharing", "cli"}
# What the service layer is built from: everything but the transport, the sharing layer, the CLI and the few
# programs beside them (doctor and the map read a store or an export on their own).
OUTSIDE_SERVICE = SHARING_AND_UP | {"doctor", "graphmap", "maplayout", "__main__"}


def modules() -> dict[str, Path]:
    """Every module by its dotted name under the package ('storage.core', 'tools', ...)."""
    return {
        ".".join(path.relative_to(PACKAGE).with_suffix("").parts): path
        for path in PACKAGE.rglob("*.py")
        if "__pycache__" not in path.parts
    }


def imported(path: Path) -> set[str]:
    """The top-level names each import in ``path`` reaches: 'mcp' for an SDK import, 'storage', 'tools', ...
    for our own (functions' imports too: a lazy import is still a dependency)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] in {"mcp", "mcp_types"}:
                found.add("mcp")
            elif parts[0] == "hebbian_memory" and len(parts) > 1:
                found.add(parts[1])
    return found


def layer(module: str) -> str:
    return module.split(".", maxsplit=1)[0]


def test_only_the_transport_and_the_cli_import_the_mcp_sdk() -> None:
    offenders = {
        module: sorted(imported(path) & {"mcp"})
        for module, path in modules().items()
        if layer(module) not in TRANSPORT | {"cli"} and "mcp" in imported(path)
    }
    assert offenders == {}, "only app, tools, resources, sessions and handshake may import the MCP SDK"


def test_storage_imports_nothing_above_it() -> None:
    allowed = {"storage", "errors", "files", "faults"}
    offenders = {
        module: sorted(imported(path) - allowed)
        for module, path in modules().items()
        if layer(module) == "storage" and imported(path) - allowed
    }
    assert offenders == {}, "storage/ may use only storage, errors, files and faults of ours"


def test_the_service_layer_never_imports_the_transport_sharing_or_cli() -> None:
    offenders = {
        module: sorted(imported(path) & SHARING_AND_UP)
        for module, path in modules().items()
        if layer(module) not in OUTSIDE_SERVICE and imported(path) & SHARING_AND_UP
    }
    assert offenders == {}, "the service layer must not import the transport, the sharing layer or the CLI"


def test_the_check_sees_imports_inside_functions(tmp_path: Path) -> None:
    source = tmp_path / "lazy.py"
    source.write_text("def f():\n    from mcp import Client\n    from hebbian_memory.tools import x\n")
    assert imported(source) == {"mcp", "tools"}
