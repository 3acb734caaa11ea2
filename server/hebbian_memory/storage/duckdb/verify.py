"""Refusing a damaged database file before anything writes to it. DuckDB checks a block's checksum (and that the file
holds it) only when it reads the block, and opening reads little more than the catalog, so the checks here make it
read what a server will later rely on: every table block, and the blocks of every index (bench/verify.py)."""

from contextlib import suppress
from pathlib import Path

import duckdb

from hebbian_memory.errors import DatabaseDamagedError

__all__ = [
    "EVERY_KEY_UP_TO",
    "LINKS",
    "STRIDE",
    "damaged",
    "indexed_columns",
    "key_batches",
    "lookup_query",
    "probe_links",
    "sample",
    "verify",
]

# Up to this many rows every key of an index is looked up; above it, the keys whose hash is 0 modulo STRIDE, so the
# cost stays bounded. A sample still passes through most of an index's blocks (each holds the nodes of many keys):
# at 10,000 memories it reached every one (bench/README.md); a block no sampled key reaches goes unchecked.
EVERY_KEY_UP_TO = 4096
STRIDE = 64
# The links' primary key, the schema's only index of two columns: DuckDB looks such an index up only on insert.
LINKS = ("associations", ("source_id", "target_id"))


def verify(path: Path) -> None:
    """Read a file whole on a read-only connection: every column of every table, then point lookups through each
    one-column index (primary keys and the content-hash index), counted against the table. The links' primary key
    is looked up by ``probe_links`` on the connection that opens the file for writing. Raises duckdb's errors for
    a table's block that fails its checksum (``store._opening`` names them) and DatabaseDamagedError, naming the
    index, for an index's block or a wrong count."""
    with duckdb.connect(str(path), read_only=True) as conn:
        tables = conn.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = current_database()"
        ).fetchall()
        for schema, table in tables:
            # hash() needs every value, so every block of every column is read and its checksum checked.
            conn.execute(f'SELECT max(hash(COLUMNS(*))) FROM "{schema}"."{table}"').fetchall()
        # An IN list takes the index (an index scan) only up to this many values; the default is 2,048.
        conn.execute("SET index_scan_max_count = 1000000000")
        for table, column in indexed_columns(conn):
            _look_up(conn, path, table, column)


def indexed_columns(conn: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """(table, column) of every one-column primary key, unique constraint and index in the main schema."""
    rows = conn.execute("""
        SELECT table_name, constraint_column_names[1] FROM duckdb_constraints()
        WHERE database_name = current_database() AND schema_name = 'main'
          AND constraint_type IN ('PRIMARY KEY', 'UNIQUE') AND len(constraint_column_names) = 1
        UNION ALL
        SELECT table_name, trim(expressions, '[]') FROM duckdb_indexes()
        WHERE database_name = current_database() AND schema_name = 'main'
          AND NOT contains(expressions, ',')  -- a two-column index (the (project, hash) one of schemas 2-3)
        ORDER BY ALL
    """).fetchall()
    return [(str(table), str(column)) for table, column in rows]


def sample(conn: duckdb.DuckDBPyConnection, table: str, columns: tuple[str, ...]) -> str:
    """The WHERE clause choosing the keys to look up: none (every key) in a small table, else one hash in STRIDE."""
    rows = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()
    if rows is None or int(rows[0]) <= EVERY_KEY_UP_TO:
        return ""
    key = ", ".join(f'"{c}"' for c in columns)
    return f"WHERE hash({key}) % {STRIDE} = 0"


def lookup_query(table: str, column: str, keys: int) -> str:
    """Counts the rows with one of ``keys`` values, through the index (an IN list of constants is an index scan)."""
    return f'SELECT count(*) FROM "{table}" WHERE "{column}" IN ({", ".join("?" * keys)})'


def key_batches(
    conn: duckdb.DuckDBPyConnection, table: str, column: str, where: str | None = None
) -> tuple[list[object], list[object]]:
    """The sampled keys, in order, split in two: every other one. An IN list of every key of a column is proved
    true for every row from the column's minimum and maximum, and then DuckDB scans the table, not the index; half
    of them (unless the table has one row) is not."""
    # Sampled by the key's value, so a key held by several rows (the content-hash index) brings all of them.
    where = sample(conn, table, (column,)) if where is None else where
    keys = [row[0] for row in conn.execute(f'SELECT DISTINCT "{column}" FROM "{table}" {where} ORDER BY 1').fetchall()]
    return keys[0::2], keys[1::2]


def _look_up(conn: duckdb.DuckDBPyConnection, path: Path, table: str, column: str) -> None:
    where = sample(conn, table, (column,))  # once: it counts the table
    expected = conn.execute(f'SELECT count(*) FROM "{table}" {where}').fetchall()[0][0]
    found = 0
    for keys in key_batches(conn, table, column, where):
        if not keys:
            continue
        try:
            found += conn.execute(lookup_query(table, column, len(keys)), keys).fetchall()[0][0]
        except duckdb.Error as e:  # the table was read whole just before: the index's own blocks are damaged
            raise damaged(path, f"reading the index on {table}({column}): {e}") from e
    if found != expected:
        raise damaged(path, f"the index on {table}({column}) finds {found} of the table's {expected} rows")


def probe_links(conn: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Look up the links' primary key on a connection open for writing, in a transaction rolled back: an insert
    checks its keys against the index, the only way DuckDB reads an index of two columns. The keys inserted are
    absent ones next to present ones (the target's lowest bit flipped), so each lookup walks the index down to
    the last byte of a present key; every insert must pass. Fewer rows than a row group, so nothing is written
    ahead of the commit that never comes."""
    table, (source, target) = LINKS
    if not conn.execute(
        "SELECT 1 FROM duckdb_tables() WHERE database_name = current_database() AND table_name = ?", [table]
    ).fetchall():
        return  # a file from a first start that stopped before the schema was made
    where = sample(conn, table, (source, target))
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute(f"""
            INSERT INTO {table} (source_id, target_id, weight, tier, kind, co_access_count, created_at, updated_at,
                                 last_strengthened_at)
            SELECT s, t, 0, 1, 'verify', 0, TIMESTAMP '2000-01-01', TIMESTAMP '2000-01-01', TIMESTAMP '2000-01-01'
            FROM (SELECT DISTINCT {source} AS s, xor({target}, 1) AS t FROM {table} {where}) AS near
            WHERE NOT EXISTS (SELECT 1 FROM {table} AS l WHERE l.{source} = near.s AND l.{target} = near.t)
        """).fetchall()
    except duckdb.ConstraintException as e:  # the index holds a key the table does not
        with suppress(duckdb.Error):
            conn.execute("ROLLBACK")
        raise damaged(path, f"the index on {table}({source}, {target}) holds keys its table does not ({e})") from e
    except duckdb.Error as e:
        with suppress(duckdb.Error):  # a failed read may have closed the connection; the first error says why
            conn.execute("ROLLBACK")
        raise damaged(path, f"reading the index on {table}({source}, {target}): {e}") from e
    conn.execute("ROLLBACK")


def damaged(path: Path, error: object) -> DatabaseDamagedError:
    return DatabaseDamagedError(
        f"The database file {path} cannot be opened ({error}). It has not been changed. To restore from a backup: "
        f"move it aside (e.g. to {path.name}.damaged), then run `hebbian-memory import <your latest export file>`, "
        "which starts a new database there; the vector index is rebuilt automatically. Without a backup, moving "
        "it aside starts an empty memory; keep the damaged file, as parts of it may still be recoverable."
    )
