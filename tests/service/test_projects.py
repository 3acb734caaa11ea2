"""Projects keep one person's work apart: storage, recall and forget stay within a project unless asked,
and a client's workspace root (MCP roots) chooses its project."""

import logging
import time
from collections.abc import AsyncGenerator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from mcp import Client
from mcp.client.context import ClientRequestContext
from mcp_types import ListRootsResult, Root

from hebbian_memory.clock import ManualClock
from hebbian_memory.config import Settings
from hebbian_memory.embedding.embedder import Vectors
from hebbian_memory.inputs import content_hash
from hebbian_memory.models import MemoryInput
from hebbian_memory.service.memory import MemoryService
from hebbian_memory.storage.duckdb import Store
from hebbian_memory.storage.duckdb.schema import MIGRATIONS
from hebbian_memory.transport.sessions import root_project
from tests.backends import OpenStore
from tests.helpers import FakeEmbedder, call, server_params

START = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def service(settings: Settings, open_store: OpenStore) -> Iterator[MemoryService]:
    clock = ManualClock(START)
    svc = MemoryService(settings, open_store(settings.data_dir / "memory.duckdb", START), FakeEmbedder(), clock)
    svc.warm_up()
    yield svc
    svc.close()


def test_recall_stays_in_its_project_unless_asked_for_all(service: MemoryService) -> None:
    shop = service.remember("deploy the shop with make release", tags=["deploy"], project="/code/shop")
    blog = service.remember("deploy the blog with hugo deploy", tags=["deploy"], project="/code/blog")
    assert [h.id for h in service.recall("how do we deploy", project="/code/shop").hits] == [shop.id]
    assert [h.id for h in service.recall("how do we deploy", project="/code/blog").hits] == [blog.id]
    assert {h.id for h in service.recall("how do we deploy", project=None).hits} == {shop.id, blog.id}
    assert service.recall("how do we deploy", project="/code/other").hits == []


def test_activation_does_not_pass_through_another_projects_memory(service: MemoryService) -> None:
    """A link path a - b - a' with b in another project (links across projects come from all_projects recalls
    used together): this project's ranking must not depend on b, so a' is not reached through it."""
    a = service.remember("the shop deploys with make release", project="shop").id
    service.remember("unrelated note about shop lunch orders", project="shop")
    later = service.remember("rollback uses the previous image tag", project="shop").id
    bridge = service.remember("the blog rolls back by reverting a commit", project="blog").id
    service.associate(a, [bridge], strength=1.0)
    service.associate(bridge, [later], strength=1.0)
    hits = service.recall("how does the shop deploy", k=5, project="shop", min_relevance=0).hits
    assert bridge not in {h.id for h in hits}
    assert all(h.via is None for h in hits)  # nothing arrived over a link: its only path left the project
    service.associate(a, [later], strength=1.0)  # a path inside the project does carry activation
    linked = [h for h in service.recall("how does the shop deploy", k=5, project="shop", min_relevance=0).hits
              if h.id == later]  # fmt: skip
    assert linked[0].via is not None
    assert linked[0].via.memory_id == a


def test_the_same_text_in_two_projects_is_two_memories(service: MemoryService) -> None:
    first = service.remember("use tabs, not spaces", project="a")
    second = service.remember("use tabs, not spaces", project="b")
    again = service.remember("use tabs, not spaces", project="a")
    assert first.id != second.id
    assert (again.id, again.created) == (first.id, False)


def test_forget_by_tag_stays_in_its_project(service: MemoryService) -> None:
    service.remember("old shop note", tags=["old"], project="shop")
    kept = service.remember("old blog note", tags=["old"], project="blog")
    assert service.forget(tags=["old"], project="shop").forgotten == 1
    assert [h.id for h in service.recall("old note", project=None).hits] == [kept.id]


def test_a_first_schema_database_migrates_with_its_memories_in_the_default_project(tmp_path: Path) -> None:
    path = tmp_path / "v1.duckdb"
    conn = duckdb.connect(str(path))
    conn.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TIMESTAMP)")
    MIGRATIONS[0](conn)
    conn.execute("INSERT INTO schema_version VALUES (1, now())")
    conn.execute(
        """INSERT INTO memories VALUES (7, 'kept from v1', 'h', [], '{}', 0.5, now(), now(), now(), now(), 0, 1.0, 1,
           NULL, ?, 'test')""",
        [b"\x00" * 16],
    )
    conn.close()
    store = Store.open(path, START)
    try:
        assert store.project_counts() == {"default": 1}
        assert store.ids_by_hash(["h"], "default") == {"h": 7}
    finally:
        store.close()


def test_a_third_schema_database_keeps_the_lone_hash_index_and_still_finds_duplicates(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    path = settings.data_dir / "memory.duckdb"
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = duckdb.connect(str(path))
    conn.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TIMESTAMP)")
    for number, migration in enumerate(MIGRATIONS[:3], start=1):
        migration(conn)
        conn.execute("INSERT INTO schema_version VALUES (?, now())", [number])
    conn.execute(
        """INSERT INTO memories (id, content, content_hash, tags, metadata, importance, created_at, updated_at,
                                 event_time, last_accessed_at, access_count, strength, tier, embedding,
                                 embedding_model, project)
           VALUES (7, 'kept from v3', ?, [], '{}', 0.5, now(), now(), now(), now(), 0, 1.0, 1, ?, 'x', 'a')""",
        [content_hash("kept from v3"), b"\x00" * 16],
    )
    conn.close()
    caplog.set_level(logging.INFO, logger="hebbian_memory.storage.duckdb.schema")
    store = Store.open(path, START)
    applied = [r.getMessage() for r in caplog.records if r.getMessage().startswith("applying schema migration")]
    assert applied[0] == "applying schema migration 4 (One content-hash index: the unique (project, hash) index goes)"
    assert len(applied) == len(MIGRATIONS) - 3, "then every later one"
    indexes = {str(r[0]) for r in store._conn.execute("SELECT index_name FROM duckdb_indexes()").fetchall()}  # pyright: ignore[reportPrivateUsage]
    assert indexes == {"memories_hash"}
    service = MemoryService(settings, store, FakeEmbedder(), ManualClock(START))
    service.warm_up()
    try:
        assert service.remember("kept from v3", project="a").id == 7
        assert service.remember("kept from v3", project="b").id != 7
        assert service.remember_many([MemoryInput(content="kept from v3")], project="a")[0].id == 7
    finally:
        service.close()


class _SlowEmbedder(FakeEmbedder):
    """Embeds slowly, so that calls overlap in the embedding they do outside the write lock."""

    def embed(self, texts: Sequence[str]) -> Vectors:
        time.sleep(0.01)  # real time: the calls must overlap for real, in threads
        return super().embed(texts)


def test_the_same_texts_sent_at_once_from_many_threads_are_stored_once_per_project(
    settings: Settings, open_store: OpenStore
) -> None:
    # One hash per project is kept by the service (checked under its write lock), not by a database index.
    service = MemoryService(
        settings, open_store(settings.data_dir / "memory.duckdb", START), _SlowEmbedder(), ManualClock(START)
    )
    service.warm_up()
    texts = [f"garden note number {i}" for i in range(30)]

    def send(shift: int) -> dict[str, int]:
        order = texts[shift:] + texts[:shift]
        project = "a" if shift % 3 else "b"
        results = service.remember_many([MemoryInput(content=t) for t in order], project=project)
        return {f"{project}:{t}": r.id for t, r in zip(order, results, strict=True)}

    try:
        with ThreadPoolExecutor(max_workers=6) as pool:
            seen = list(pool.map(send, range(12)))
        ids: dict[str, set[int]] = {}
        for found in seen:
            for key, memory_id in found.items():
                ids.setdefault(key, set()).add(memory_id)
        assert all(len(same) == 1 for same in ids.values())  # every caller got the one id of its text
        assert len({next(iter(same)) for same in ids.values()}) == 60  # 30 texts in each of two projects
        assert service.stats().projects == {"a": 30, "b": 30}
    finally:
        service.close()


def test_root_uris_become_folder_paths() -> None:
    assert root_project("file:///home/ana/code/shop/") == "/home/ana/code/shop"
    assert root_project("file:///home/ana/My%20Project") == "/home/ana/My Project"
    assert root_project("file://server/share/x") == "//server/share/x"
    assert root_project("https://example.com/repo") == "https://example.com/repo"


@asynccontextmanager
async def client_with_roots(
    data_dir: Path, *roots: str, mode: str, asked: list[str] | None = None, env: dict[str, str] | None = None
) -> AsyncGenerator[Client]:
    """A real client over stdio offering ``roots`` (none: no roots capability); each time the server asks for
    them, the first is added to ``asked``."""

    async def list_roots(context: ClientRequestContext) -> ListRootsResult:
        if asked is not None:
            asked.append(roots[0])
        return ListRootsResult(roots=[Root(uri=uri) for uri in roots])  # pyright: ignore[reportArgumentType]

    # A client without the callback declares no roots capability. The handshake era ("legacy") asks for roots
    # with a roots/list request; the 2026 era ("auto" negotiates it) answers them in a tool call's retry.
    callback = list_roots if roots else None
    params = server_params(data_dir, env=env)
    async with Client(params, read_timeout_seconds=120, list_roots_callback=callback, mode=mode) as client:
        yield client


@pytest.mark.anyio
@pytest.mark.slow
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_clients_in_different_workspaces_do_not_see_each_others_memories(data_dir: Path, mode: str) -> None:
    # "auto" is the client's default: it opens with server/discover and speaks the 2026 protocol.
    asked: list[str] = []
    async with (
        client_with_roots(data_dir, "file:///home/ana/code/shop", mode=mode, asked=asked) as shop,
        client_with_roots(data_dir, "file:///home/ana/code/blog", mode=mode, asked=asked) as blog,
        client_with_roots(data_dir, mode=mode, env={"HEBBIAN_MEMORY_PROJECT": "home"}) as rootless,
    ):
        assert shop.protocol_version == ("2026-07-28" if mode == "auto" else "2025-11-25")
        in_shop = await call(shop, "remember", content="The shop's staging server is called mercury.")
        in_blog = await call(blog, "remember", content="The blog's staging server is called venus.")
        anywhere = await call(rootless, "remember", content="The home router's staging server is called mars.")
        projects = (await call(rootless, "stats"))["projects"]
        assert projects == {"/home/ana/code/shop": 1, "/home/ana/code/blog": 1, "home": 1}
        query = "what is the staging server called"
        assert [h["id"] for h in (await call(shop, "recall", query=query))["hits"]] == [in_shop["id"]]
        assert [h["id"] for h in (await call(blog, "recall", query=query))["hits"]] == [in_blog["id"]]
        assert [h["id"] for h in (await call(rootless, "recall", query=query))["hits"]] == [anywhere["id"]]
        everything = await call(shop, "recall", query=query, all_projects=True)
        assert {h["id"] for h in everything["hits"]} == {in_shop["id"], in_blog["id"], anywhere["id"]}
        explicit = await call(rootless, "recall", query=query, project="/home/ana/code/blog")
        assert [h["id"] for h in explicit["hits"]] == [in_blog["id"]]
    assert sorted(asked) == ["file:///home/ana/code/blog", "file:///home/ana/code/shop"]  # once, at the first call
