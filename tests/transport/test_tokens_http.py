"""Team tokens over HTTP, through the real MCP client against a real server process: each token sees and
changes only the projects it is bound to, and the tokens file is read again when it changes."""

import subprocess
import sys
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from tests.helpers import call, call_error
from tests.transport.test_http import INITIALIZE, MCP_HEADERS, http_server

pytestmark = pytest.mark.slow

ALICE, BOB, ADMIN = "alice-token-0123456789abcdef", "bob-token-0123456789abcdefgh", "admin-token-0123456789abcdef"
WEB, APP = "acme/web", "beta/app"


def tokens_file(path: Path, *entries: tuple[str, str, list[str]]) -> Path:
    path.write_text(
        "".join(
            f'[[token]]\nname = "{name}"\ntoken = "{token}"\nprojects = [{", ".join(f"{p!r}" for p in projects)}]\n'
            for name, token, projects in entries
        ).replace("'", '"')
    )
    return path


@asynccontextmanager
async def as_token(port: int, token: str) -> AsyncGenerator[Client]:
    http = httpx2.AsyncClient(headers={"authorization": f"Bearer {token}"}, timeout=120)
    async with http, Client(streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=http)) as client:
        yield client


async def status_with(port: int, token: str) -> int:
    async with httpx2.AsyncClient(timeout=120) as http:
        answer = await http.post(
            f"http://127.0.0.1:{port}/mcp", json=INITIALIZE, headers={**MCP_HEADERS, "authorization": f"Bearer {token}"}
        )
    return answer.status_code


def ids_of(result: dict[str, Any]) -> set[int]:
    return {hit["id"] for hit in result["hits"]} | {hit["via"]["memory_id"] for hit in result["hits"] if hit["via"]}


@pytest.mark.anyio
async def test_two_team_tokens_see_and_change_only_their_own_projects(data_dir: Path, tmp_path: Path) -> None:
    path = tokens_file(
        tmp_path / "tokens.toml", ("alice", ALICE, [WEB]), ("bob", BOB, [APP]), ("admin", ADMIN, [WEB, APP])
    )
    settings = {"HEBBIAN_MEMORY_HTTP_TOKENS_FILE": str(path)}
    with http_server(data_dir, "streamable-http", settings=settings) as port:
        async with as_token(port, ALICE) as alice, as_token(port, BOB) as bob, as_token(port, ADMIN) as admin:
            mine = await call(alice, "remember", content="The web deploy key rotates every Monday.", tags=["ops"])
            theirs = await call(bob, "remember", content="The app deploy key rotates every Friday.", tags=["ops"])
            a, b = mine["id"], theirs["id"]
            # A link across the two projects (made by a token bound to both): recall must not follow it out.
            await call(admin, "associate", source_id=a, target_ids=[b], strength=1.0)

            for arguments in (
                {"query": "app deploy key Friday"},
                {"query": "app deploy key Friday", "all_projects": True, "min_relevance": 0.0},
                {"query": "deploy key", "tags": ["ops"], "all_projects": True, "min_relevance": 0.0},
                {"query": "web deploy key Monday", "min_relevance": 0.0, "k": 100},
            ):
                found = await call(alice, "recall", **arguments)
                assert b not in ids_of(found), arguments
                assert all("Friday" not in hit["content"] for hit in found["hits"])
            assert a in ids_of(await call(alice, "recall", query="web deploy key", all_projects=True))

            unknown = await call_error(alice, "associate", source_id=a, target_ids=[10**9])
            foreign = await call_error(alice, "associate", source_id=a, target_ids=[b])
            assert foreign == unknown.replace(str(10**9), str(b))  # no hint that it exists
            assert "No memory with id" in await call_error(alice, "forget", ids=[b])
            refused = await call_error(alice, "recall", query="deploy", project=APP)
            assert f"may not use project '{APP}'" in refused
            assert f"'{WEB}'" in refused
            assert APP in await call_error(alice, "remember", content="sneak", project=APP)
            assert APP in await call_error(alice, "forget", tags=["ops"], project=APP)

            forgotten = await call(alice, "forget", tags=["ops"], all_projects=True)
            assert forgotten["ids"] == [a]
            used = await call(alice, "recall", query="deploy", used=[b], all_projects=True)
            assert "not stored in this project" in (used["note"] or "")

            stats = await call(alice, "stats")
            assert APP not in stats["projects"]
            resources = await alice.list_resources()
            assert not [r for r in resources.resources if str(r.uri).startswith("memory://")]

            still = await call(bob, "recall", query="app deploy key Friday", k=1)
            assert [hit["id"] for hit in still["hits"]] == [b]  # bob's memory is untouched by alice's calls
            assert (await call(bob, "stats"))["projects"] == {APP: 1}


@pytest.mark.anyio
async def test_over_sse_a_token_session_uses_its_own_project(data_dir: Path, tmp_path: Path) -> None:
    path = tokens_file(tmp_path / "tokens.toml", ("alice", ALICE, [WEB]), ("bob", BOB, [APP]))
    with http_server(data_dir, "sse", settings={"HEBBIAN_MEMORY_HTTP_TOKENS_FILE": str(path)}) as port:
        url = f"http://127.0.0.1:{port}/sse"
        async with Client(sse_client(url, headers={"authorization": f"Bearer {ALICE}"}, timeout=120)) as alice:
            a = (await call(alice, "remember", content="The staging database lives in Frankfurt."))["id"]
        async with Client(sse_client(url, headers={"authorization": f"Bearer {BOB}"}, timeout=120)) as bob:
            found = await call(bob, "recall", query="staging database Frankfurt", all_projects=True, min_relevance=0)
            assert a not in ids_of(found)
            assert (await call(bob, "stats"))["projects"] == {}


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hebbian_memory", "token", *args], capture_output=True, text=True, check=True, env={}
    )


@pytest.mark.anyio
async def test_the_tokens_file_is_read_again_when_it_changes(data_dir: Path, tmp_path: Path) -> None:
    path = tokens_file(tmp_path / "tokens.toml", ("alice", ALICE, [WEB]), ("bob", BOB, [APP]))
    with http_server(data_dir, "streamable-http", settings={"HEBBIAN_MEMORY_HTTP_TOKENS_FILE": str(path)}) as port:
        assert (await status_with(port, ALICE), await status_with(port, BOB)) == (200, 200)
        good = path.read_text()
        path.write_text(good + "[[token]\nname = ")  # a half-saved edit: the tokens in force stay
        assert (await status_with(port, ALICE), await status_with(port, BOB)) == (200, 200)
        path.write_text(good)

        cli("revoke", "bob", "--file", str(path))  # no restart: bob's next request is refused
        assert (await status_with(port, ALICE), await status_with(port, BOB)) == (200, 401)
        secret = cli("new", "carol", "--project", APP, "--file", str(path)).stdout.strip()
        assert secret not in path.read_text()  # only its sha256 is kept
        async with as_token(port, secret) as carol:
            stored = await call(carol, "remember", content="Carol joined the app team.")
            assert (await call(carol, "stats"))["projects"] == {APP: 1}
        async with as_token(port, ALICE) as alice:
            assert stored["id"] not in ids_of(await call(alice, "recall", query="Carol", all_projects=True))
        path.unlink()  # a file that is gone refuses everyone
        assert await status_with(port, ALICE) == 401
