"""Several machines (data dirs) on one PostgreSQL, two clients each, owners SIGKILLed mid-stream: nothing
acknowledged is lost, no text is stored twice, no associate's growth is lost, and a recall finds every text
another machine acknowledged before it began (tests/peer_stream.py; bench/peers.py runs it at full size)."""

from collections.abc import Callable
from pathlib import Path

import pytest

from tests import postgres
from tests.peer_stream import PEER_ENV, Shape, check, run_peers

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

# Three pairs, about twenty associates on each: their links reach tier 3 (10 growths) while associates go on, so
# a consolidation pass (every 1.2 s) promoting one meets growths from other machines.
SHAPE = Shape(
    machines=3,
    clients=2,
    ops=40,
    kills=3,
    pair_ends=1,
    env={**PEER_ENV, "HEBBIAN_MEMORY_PLASTICITY_PASS_MINUTES": "0.02"},
)


@pytest.mark.timeout(300)
async def test_kills_on_machines_sharing_one_postgres_lose_nothing_acknowledged(
    tmp_path: Path, record_count: Callable[[str, int], None]
) -> None:
    name = postgres.create_database()
    try:
        url = postgres.database_url(name)
        run, _ = await run_peers(SHAPE, tmp_path, url)
        counts = check(run, url)
    finally:
        postgres.drop_database(name)
    assert not run.problems, run.problems[:5]
    assert not run.misses, run.misses[:5]
    assert counts["acknowledged remembers lost"] == 0
    assert counts["duplicates"] == 0
    assert counts["links with a lost growth"] == 0
    assert run.counts.get("kills") == SHAPE.kills
    assert counts["links exact"] > 0, counts
    assert run.counts.get("reinforced", 0) > 0, "shared texts must meet stored ones"
    for name_, n in {**run.counts, **counts}.items():
        record_count(name_, n)
