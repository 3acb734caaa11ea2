"""Numbered, append-only schema migrations. Never edit a released one: add the next."""

import logging
from collections.abc import Callable
from datetime import datetime

import duckdb

from hebbian_memory.errors import StorageError

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "Migration", "current_version", "migrate"]

log = logging.getLogger(__name__)


def _v1_initial(conn: duckdb.DuckDBPyConnection) -> None:
    """The first schema: memories, associations, sessions, access events, key/value meta."""
    conn.execute("""
        CREATE SEQUENCE memory_id_seq START 1;
        CREATE TABLE memories (
            id               BIGINT PRIMARY KEY DEFAULT nextval('memory_id_seq'),
            content          VARCHAR NOT NULL,
            content_hash     VARCHAR NOT NULL,  -- sha256 of the stripped content: exact-duplicate detection
            tags             VARCHAR[] NOT NULL,
            metadata         JSON NOT NULL,
            importance       DOUBLE NOT NULL,   -- 0..1, given by the caller
            created_at       TIMESTAMP NOT NULL, -- all times are naive UTC
            updated_at       TIMESTAMP NOT NULL,
            event_time       TIMESTAMP NOT NULL, -- when the remembered thing happened
            last_accessed_at TIMESTAMP NOT NULL,
            access_count     INTEGER NOT NULL,
            strength         DOUBLE NOT NULL,   -- 0..1, decays; plasticity restores it
            tier             TINYINT NOT NULL,  -- 1 working, 2 episodic, 3 semantic
            session_id       BIGINT,
            embedding        BLOB NOT NULL,     -- float32 little-endian; the vector index is rebuilt from it
            embedding_model  VARCHAR NOT NULL
        );
        CREATE UNIQUE INDEX memories_content_hash ON memories (content_hash);

        CREATE TABLE associations (
            source_id            BIGINT NOT NULL,  -- stored with source_id < target_id: links are symmetric
            target_id            BIGINT NOT NULL,
            weight               DOUBLE NOT NULL,  -- 0..1
            tier                 TINYINT NOT NULL,
            kind                 VARCHAR NOT NULL, -- explicit | coaccess | temporal
            co_access_count      INTEGER NOT NULL,
            created_at           TIMESTAMP NOT NULL,
            updated_at           TIMESTAMP NOT NULL,
            last_strengthened_at TIMESTAMP NOT NULL,
            PRIMARY KEY (source_id, target_id)
        );

        CREATE SEQUENCE session_id_seq START 1;
        CREATE TABLE sessions (
            id             BIGINT PRIMARY KEY DEFAULT nextval('session_id_seq'),
            transport      VARCHAR NOT NULL,
            client_name    VARCHAR,
            client_version VARCHAR,
            started_at     TIMESTAMP NOT NULL,
            ended_at       TIMESTAMP
        );

        CREATE SEQUENCE access_event_id_seq START 1;
        CREATE TABLE access_events (
            id          BIGINT PRIMARY KEY DEFAULT nextval('access_event_id_seq'),
            memory_id   BIGINT NOT NULL,
            session_id  BIGINT,
            kind        VARCHAR NOT NULL,  -- remembered | reinforced | recalled | linked
            occurred_at TIMESTAMP NOT NULL
        );

        CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL);
    """)


def _v2_projects(conn: duckdb.DuckDBPyConnection) -> None:
    """Projects: every memory and session belongs to one; exact duplicates are detected within a project.
    Replay bookkeeping on memories."""
    conn.execute("""
        DROP INDEX memories_content_hash;  -- DuckDB alters no table that an index depends on
        ALTER TABLE memories ADD COLUMN project VARCHAR DEFAULT 'default';
        ALTER TABLE memories ALTER COLUMN project SET NOT NULL;
        ALTER TABLE memories ADD COLUMN last_replayed_at TIMESTAMP;
        ALTER TABLE memories ADD COLUMN replay_count INTEGER DEFAULT 0;
        ALTER TABLE memories ALTER COLUMN replay_count SET NOT NULL;
        CREATE UNIQUE INDEX memories_project_hash ON memories (project, content_hash);
        -- Lookups by hash alone: DuckDB probes a one-column index about three times faster than the pair.
        CREATE INDEX memories_hash ON memories (content_hash);
        ALTER TABLE sessions ADD COLUMN project VARCHAR;
    """)


def _v3_temporal_links(conn: duckdb.DuckDBPyConnection) -> None:
    """Temporal links: memories stored one after another in a session are linked (weight 0.5, working tier)."""
    conn.execute("""
        INSERT INTO associations
        SELECT least(previous, id), greatest(previous, id), 0.5, 1, 'temporal', 0, created_at, created_at, created_at
        FROM (SELECT id, created_at, lag(id) OVER (PARTITION BY session_id ORDER BY id) AS previous
              FROM memories WHERE session_id IS NOT NULL)
        WHERE previous IS NOT NULL
        ON CONFLICT DO NOTHING
    """)


def _v4_one_hash_index(conn: duckdb.DuckDBPyConnection) -> None:
    """One content-hash index: the unique (project, hash) index goes. Lookups never used it (DuckDB probes the
    lone-hash index; without that one a lookup scans), yet once loaded it held about 13 MB at 100,000 memories
    and every insert kept it up. One hash per project stays the rule: the one writing process checks the hash
    under its write lock before it inserts."""
    conn.execute("DROP INDEX memories_project_hash")


def _v5_memory_use(conn: duckdb.DuckDBPyConnection) -> None:
    """Use reports: per memory, how much an assistant said it used it, how often it misled, and for what queries
    (usage.py)."""
    conn.execute("""
        CREATE TABLE memory_use (
            memory_id BIGINT PRIMARY KEY,
            uses      DOUBLE NOT NULL,     -- sums of surprises (0..1 per report), as of used_at
            misleads  DOUBLE NOT NULL,
            used_at   TIMESTAMP NOT NULL, -- the last report
            cue       FLOAT[],            -- unit mean of the query vectors it was used for (the model in use)
            cue_weight DOUBLE NOT NULL
        )
    """)


Migration = Callable[[duckdb.DuckDBPyConnection], None]
MIGRATIONS: tuple[Migration, ...] = (_v1_initial, _v2_projects, _v3_temporal_links, _v4_one_hash_index, _v5_memory_use)
SCHEMA_VERSION = len(MIGRATIONS)


def current_version(conn: duckdb.DuckDBPyConnection) -> int:
    exists = conn.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'"
    ).fetchone()
    if not exists or exists[0] == 0:
        return 0
    row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
    return int(row[0]) if row else 0


def _first_sentence(doc: str | None) -> str:
    """A migration's docstring up to its first full stop, on one line, for the log."""
    return " ".join((doc or "").split()).split(". ")[0].rstrip(".")


def migrate(conn: duckdb.DuckDBPyConnection, now: datetime) -> int:
    """Apply every migration newer than the database, each in its own transaction; return the version."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at TIMESTAMP)")
    version = current_version(conn)
    if version > SCHEMA_VERSION:
        raise StorageError(
            f"The database has schema version {version}, newer than this hebbian-memory knows ({SCHEMA_VERSION}). "
            "Upgrade hebbian-memory."
        )
    for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
        log.info("applying schema migration %d (%s)", number, _first_sentence(migration.__doc__))
        conn.execute("BEGIN TRANSACTION")
        try:
            migration(conn)
            conn.execute("INSERT INTO schema_version VALUES (?, ?)", [number, now.replace(tzinfo=None)])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return SCHEMA_VERSION
