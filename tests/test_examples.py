import json
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("*.json"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_client_config_examples_are_valid_and_launch_hebbian_memory(path: Path) -> None:
    servers = json.loads(path.read_text())["mcpServers"]
    for entry in servers.values():
        assert entry["command"] == "uvx"
        assert entry["args"][:1] == ["--from"]
        assert "hebbian-memory" in entry["args"][2:]


def test_there_are_examples() -> None:
    assert EXAMPLES
