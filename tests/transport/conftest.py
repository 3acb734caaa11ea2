import pytest


@pytest.fixture(autouse=True)
def _each_backend(server_backend: str) -> str:
    """Every test here runs its servers on DuckDB and on PostgreSQL."""
    return server_backend
