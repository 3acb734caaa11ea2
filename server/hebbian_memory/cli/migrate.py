"""`hebbian-memory migrate`: the whole store moved between DuckDB (the data dir's file) and PostgreSQL, rows copied
as stored (ids, embeddings, use records, links with every column), then checked."""

import json
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from itertools import islice
from pathlib import Path
from typing import TypeVar

import click
import numpy as np
import numpy.typing as npt

from hebbian_memory.cli.common import JSON_OPTION, our_error, settings_of, shared_options
from hebbian_memory.config import Settings
from hebbian_memory.errors import HebbianMemoryError
from hebbian_memory.storage import ExportRows, Link, MemoryStore, StoredMemory, Totals

__all__ = ["migrate_command"]

T = TypeVar("T")

_BATCH = 1000  # memories per import (one transaction, one COPY)
_LINK_BATCH = 5000
_SAMPLES = 200  # embeddings compared bit for bit at the end


def _batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of ``size`` (the last shorter); itertools.batched is Python 3.12's."""
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


class MigrationError(HebbianMemoryError):
    """The migration was refused, or its check found the target differing from the source."""


@dataclass(slots=True)
class Moved:
    """What a migration did, as `--json` prints it."""

    source: str
    target: str
    sessions: int = 0
    memories: int = 0
    links: int = 0
    skipped_memories: int = 0  # already in a non-empty target (same project and text)
    seconds: float = 0.0
    indexes_rebuilt: bool = False  # PostgreSQL: dropped for the load and built once after it
    samples_checked: int = 0
    samples: dict[int, npt.NDArray[np.float32]] = field(default_factory=dict[int, npt.NDArray[np.float32]])


@click.command("migrate")
@click.option(
    "--to", "to", type=click.Choice(["postgres", "duckdb"]), required=True, help="The backend to move the store to."
)
@click.argument("where", required=False)
@click.option(
    "--into-nonempty",
    is_flag=True,
    help="Also load into a target that holds memories: those already there (same project and text) are skipped.",
)
@JSON_OPTION
@shared_options
@click.pass_context
def migrate_command(ctx: click.Context, to: str, where: str | None, into_nonempty: bool, as_json: bool) -> None:
    """Move the whole store to another backend. `--to postgres URL` copies the data dir's DuckDB store into the
    PostgreSQL database at URL; `--to duckdb [PATH]` copies the configured PostgreSQL store (storage.url) into a
    DuckDB file (default: the data dir's memory.duckdb). Ids, embeddings, use records and links are copied as
    stored, from one consistent snapshot; the source is left as it was. Stop the servers on the data dir first.
    A target that already holds memories is refused unless --into-nonempty."""
    from hebbian_memory.app.wiring import redact_url

    settings = settings_of(ctx)
    try:
        moved = _migrate(settings, to, where, into_nonempty)
    except HebbianMemoryError as e:
        raise click.ClickException(str(e)) from e
    except Exception as e:
        cause = our_error(e)
        if cause is None:
            raise
        raise click.ClickException(str(cause)) from e
    if as_json:
        out = asdict(moved)
        out.pop("samples")
        click.echo(json.dumps(out, indent=2))
        return
    rate = moved.memories / moved.seconds if moved.seconds else 0.0
    click.echo(
        f"Moved {moved.memories} memories, {moved.links} links and {moved.sessions} sessions from {moved.source} "
        f"to {moved.target} in {moved.seconds:.1f} s ({rate:,.0f} memories/s); counts and {moved.samples_checked} "
        "sampled embeddings checked equal."
    )
    if moved.skipped_memories:
        click.echo(f"{moved.skipped_memories} memories were in the target already and were skipped.")
    if to == "postgres":
        assert where is not None
        click.echo(
            "To use it, set (the password where *** stands) and restart your clients:\n"
            f"  HEBBIAN_MEMORY_STORAGE_BACKEND=postgres HEBBIAN_MEMORY_STORAGE_URL='{redact_url(where)}'\n"
            f'or in the config file: [storage] backend = "postgres", url = "...". The DuckDB file stays as '
            "it was (a backup)."
        )
    else:
        click.echo(
            'To use it, set HEBBIAN_MEMORY_STORAGE_BACKEND=duckdb (or [storage] backend = "duckdb") and restart '
            "your clients; the server reads memory.duckdb in its data dir, and rebuilds its vector and keyword "
            "indexes from it at the first start. The PostgreSQL database stays as it was."
        )


def _endpoints(settings: Settings, to: str, where: str | None) -> tuple[tuple[str, str], tuple[str, str], Path | None]:
    """(backend, where) of the source and of the target, and the DuckDB file this run would begin (if any)."""
    from hebbian_memory.app.wiring import DATABASE

    if to == "postgres":
        if not where:
            raise MigrationError("Name the target: hebbian-memory migrate --to postgres postgresql://user@host/db")
        source_path = settings.data_dir / DATABASE
        if not source_path.is_file():
            raise MigrationError(f"There is no DuckDB store to move: {source_path} does not exist.")
        return ("duckdb", str(source_path)), ("postgres", where), None
    if settings.storage.backend != "postgres":
        raise MigrationError(
            "The configured store is DuckDB already: set storage.backend = postgres and storage.url (or "
            "HEBBIAN_MEMORY_STORAGE_BACKEND and HEBBIAN_MEMORY_STORAGE_URL) to the database to move from."
        )
    path = Path(where).expanduser().absolute() if where else settings.data_dir / DATABASE
    return ("postgres", settings.storage.url), ("duckdb", str(path)), None if path.exists() else path


def _migrate(settings: Settings, to: str, where: str | None, into_nonempty: bool) -> Moved:
    from hebbian_memory.app.wiring import build_embedder, open_store_at, redact_url, settings_clock
    from hebbian_memory.sharing.election import OwnerLock

    source, target, made = _endpoints(settings, to, where)
    shown = [redact_url(w) if b == "postgres" else w for b, w in (source, target)]
    # While a server owns the data dir it writes to its store: a copy would miss what comes after the snapshot,
    # and the DuckDB file is held open by it.
    lock = OwnerLock(settings.data_dir)
    if not lock.try_acquire():
        raise MigrationError(
            f"A hebbian-memory server is running on {settings.data_dir}. Stop the servers first (quit the MCP "
            "clients that started them, or stop `hebbian-memory serve`), then run migrate again. Nothing was "
            "written."
        )
    embedder, now = build_embedder(settings), settings_clock(settings).now()
    stores: list[MemoryStore] = []
    try:
        stores.append(open_store_at(*source, now, embedder))
        stores.append(open_store_at(*target, now, embedder))
        moved = Moved(shown[0], shown[1])
        _copy(stores[0], stores[1], into_nonempty, moved)
        return moved
    except BaseException:
        if made is not None:  # a DuckDB file this run began: no half copy left behind
            for store in stores[1:]:
                store.close()
            del stores[1:]
            for leftover in (made, made.with_name(made.name + ".wal")):
                leftover.unlink(missing_ok=True)
        raise
    finally:
        for store in stores:
            store.close()
        lock.release()


def _copy(source: MemoryStore, target: MemoryStore, into_nonempty: bool, moved: Moved) -> None:
    from hebbian_memory.app.wiring import bulk_load

    before = _totals(target)
    if before.memories and not into_nonempty:
        raise MigrationError(
            f"The target {moved.target} holds {before.memories} memories already. Migrate into an empty one, or "
            "give --into-nonempty to add to it (memories already there, same project and text, are skipped; "
            "ids are kept where free). Nothing was written."
        )
    started = time.monotonic()
    with bulk_load(target) as rebuilt, source.export_rows() as rows:
        moved.indexes_rebuilt = rebuilt
        totals = rows.totals()
        sessions = _sessions(rows, target, moved)
        memories = _memories(rows, target, sessions, bool(before.memories), totals, moved)
        for batch in _batches(_links(rows.links(), memories), _LINK_BATCH):
            moved.links += len(target.import_links(batch))
    moved.seconds = round(time.monotonic() - started, 3)
    _verify(target, before, totals, memories, moved)


def _totals(store: MemoryStore) -> Totals:
    with store.export_rows() as rows:
        return rows.totals()


def _sessions(rows: ExportRows, target: MemoryStore, moved: Moved) -> dict[int, int]:
    """Each source session's id in the target."""
    ids: dict[int, int] = {}
    for batch in _batches(rows.sessions(), _BATCH):
        new, matched = target.import_sessions(batch)
        ids.update(zip([s.id for s in batch], new, strict=True))
        moved.sessions += len(batch) - matched
    return ids


def _memories(
    rows: ExportRows, target: MemoryStore, sessions: dict[int, int], dedupe: bool, totals: Totals, moved: Moved
) -> dict[int, int]:
    """Each source memory's id in the target (an id taken there gets a new one; a duplicate maps to the memory
    already stored). Keeps a sample of the embeddings copied, for the check."""
    ids: dict[int, int] = {}
    every = max(1, totals.memories // _SAMPLES)
    with click.progressbar(length=totals.memories, label="migrating memories", file=sys.stderr) as bar:
        for batch in _batches(rows.memories(), _BATCH):
            fresh = _not_stored(target, batch, ids) if dedupe else list(batch)
            moved.skipped_memories += len(batch) - len(fresh)
            fresh = [
                replace(m, session_id=sessions.get(m.session_id, m.session_id)) if m.session_id else m for m in fresh
            ]
            new = target.import_memories(fresh)
            for memory, new_id in zip(fresh, new, strict=True):
                assert memory.id is not None  # an export's rows carry their ids
                ids[memory.id] = new_id
                if new_id % every == 0 or len(moved.samples) < 8:
                    moved.samples[new_id] = memory.embedding
            moved.memories += len(new)
            bar.update(len(batch))
    return ids


def _not_stored(target: MemoryStore, batch: Sequence[StoredMemory], ids: dict[int, int]) -> list[StoredMemory]:
    """The memories of ``batch`` the target lacks; the others' ids map to the target's copy."""
    by_project: dict[str, list[StoredMemory]] = {}
    for m in batch:
        by_project.setdefault(m.project, []).append(m)
    fresh: list[StoredMemory] = []
    for project, group in by_project.items():
        stored = target.ids_by_hash([m.content_hash for m in group], project)
        for m in group:
            if m.content_hash in stored:
                assert m.id is not None
                ids[m.id] = stored[m.content_hash]
            else:
                fresh.append(m)
    return fresh


def _links(links: Iterable[Link], ids: dict[int, int]) -> Iterator[Link]:
    """The links with their ends' ids in the target (ends kept in order: a renumbered pair may swap)."""
    for link in links:
        a, b = ids.get(link.source_id), ids.get(link.target_id)
        if a is not None and b is not None:
            yield replace(link, source_id=min(a, b), target_id=max(a, b))


def _verify(target: MemoryStore, before: Totals, totals: Totals, ids: dict[int, int], moved: Moved) -> None:
    """Counts equal (the target's grew by what was copied) and the sampled embeddings equal bit for bit."""
    after = _totals(target)
    expected = Totals(before.sessions + moved.sessions, before.memories + moved.memories, before.links + moved.links)
    whole = moved.memories + moved.skipped_memories == totals.memories and len(ids) == totals.memories
    if after != expected or not whole or (not before.memories and after != totals):
        raise MigrationError(
            f"The check after copying found different counts: source {totals}, target before {before}, target "
            f"now {after}. The target keeps what was written; the source is unchanged."
        )
    by_dim: dict[int, list[int]] = {}
    for new_id, vector in moved.samples.items():
        by_dim.setdefault(len(vector), []).append(new_id)
    for dim, sample in by_dim.items():
        stored = target.embeddings(sample, dim)
        expected_vectors = np.stack([moved.samples[i] for i in sample]).astype(np.float32)
        if not np.array_equal(stored.view(np.uint32), expected_vectors.view(np.uint32)):
            raise MigrationError(
                "The check after copying found embeddings that differ from the source's. The target keeps what "
                "was written; the source is unchanged."
            )
        moved.samples_checked += len(sample)
