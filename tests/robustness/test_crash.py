"""The kill harness: the real server (stdio, real model) is SIGKILLed at random moments of a stream of remember,
remember_many, associate, forget and recall calls, while consolidation passes run every few hundred ms.

After every kill the database is opened the way a restart opens it and checked: every acknowledged write is
there, nothing acknowledged as forgotten is back, every acknowledged link between surviving memories exists.
The next server start then reports that both indexes hold exactly the stored memories and recall finds a
known memory. HEBBIAN_SOAK=1 runs 500 kills instead of 50, and 60 instead of 12 in each variant.

The variants run the same loop (`kill_cycles`) in a hostile world: the data dir on a small disk that fills up
mid-stream, the data dir turned read-only mid-stream, and symbolic links planted before every start at each
name the server (and at the end the CLI) writes, on the full disk too. Under a fault, a call refused with
"nothing changed" must have changed nothing, and reads must go on. Each variant ends by damaging the database
in its middle: the next start refuses it by name and leaves it byte for byte as it was.
"""

import json
import os
import random
import signal
import subprocess
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.stdio import stdio_client

from tests import disks
from tests.conftest import SOAK
from tests.crash_stream import Ledger, first_checks, owner_pid, stream, verify
from tests.helpers import base_env, server_params
from tests.planted import VICTIM_TEXT

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

KILLS = 500 if SOAK else int(os.environ.get("HEBBIAN_KILLS", "50"))
VARIANT_KILLS = 60 if SOAK else int(os.environ.get("HEBBIAN_VARIANT_KILLS", "12"))
# Consolidation passes every 0.3 s, so kills land in them too; the vector index saved every 20 changes, so
# kills land between and during saves.
FAST = {
    "HEBBIAN_MEMORY_PLASTICITY_PASS_MINUTES": "0.005",
    "HEBBIAN_MEMORY_INDEX_SAVE_EVERY_CHANGES": "20",
    "HEBBIAN_MEMORY_LOG_LEVEL": "WARNING",
}


@dataclass(frozen=True)
class Hazard:
    """A fault that strikes mid-stream (``strike`` may take a while, as a disk filling up does) and is lifted once
    the server is dead (``lift``, harmless when nothing struck)."""

    strike: Callable[[], Coroutine[Any, Any, None]]
    lift: Callable[[], None]


@dataclass(frozen=True)
class Plan:
    """When one cycle's kill lands: ``delay`` after this start's first acknowledged write (a slow start on a busy
    machine cannot turn every kill into a start-up kill), or after the start itself (``during_start``)."""

    delay: float
    during_start: bool = False
    strike_after: float | None = None  # the hazard strikes this long after the first write; None: not at all
    after_a_fault: bool = False  # the delay counts from the first call the fault refused (4 s at most)


def plain_plan(cycle: int, rng: random.Random) -> Plan:
    """Mostly mid-stream, sometimes during start-up (election, migration, model load, index reconcile)."""
    if cycle % 5 == 0:
        return Plan(rng.uniform(0.0, 0.4), during_start=True)
    return Plan(rng.uniform(0.0, 1.7))


def fault_plan(cycle: int, rng: random.Random) -> Plan:
    """A third of the kills before the fault, a third while it strikes, a third after a call has met it."""
    if cycle % 3 == 0:
        return Plan(rng.uniform(0.0, 1.2))
    if cycle % 3 == 1:
        return Plan(rng.uniform(0.0, 0.4), strike_after=rng.uniform(0.0, 0.5))
    return Plan(rng.uniform(0.0, 0.8), strike_after=rng.uniform(0.0, 0.3), after_a_fault=True)


async def run_until_killed(
    data_dir: Path,
    ledger: Ledger,
    rng: random.Random,
    cycle: int,
    plan: Plan,
    env: dict[str, str],
    hazard: Hazard | None,
) -> None:
    """Start the server, stream calls at it and SIGKILL it as ``plan`` says, the hazard striking meanwhile."""
    died = anyio.Event()
    before = ledger.writes

    async def kill(pid: int) -> None:
        await anyio.sleep(plan.delay)
        os.kill(pid, signal.SIGKILL)
        died.set()

    async def killer() -> None:
        pid = await owner_pid(data_dir)
        while not plan.during_start and ledger.writes == before:
            await anyio.sleep(0.02)  # real time: watching a real server process's progress
        if hazard is None or plan.strike_after is None:
            await kill(pid)
            return
        await anyio.sleep(plan.strike_after)
        met = ledger.faults_met
        async with anyio.create_task_group() as tg:
            tg.start_soon(hazard.strike)
            with anyio.move_on_after(4):
                while plan.after_a_fault and ledger.faults_met == met:
                    await anyio.sleep(0.02)
            await kill(pid)
            tg.cancel_scope.cancel()

    async def session(everything: anyio.CancelScope) -> None:
        try:
            async with Client(server_params(data_dir, env=env), read_timeout_seconds=60) as client:
                await first_checks(client, ledger, rng)
                await stream(client, ledger, rng, cycle)
        except Exception as e:  # the kill cuts the connection mid-call
            if not died.is_set():
                ledger.problems.append(f"cycle {cycle}: the server failed before it was killed: {e!r}")
                everything.cancel()

    (data_dir / "owner.json").unlink(missing_ok=True)  # a dead owner's file: wait for the new one
    with anyio.fail_after(120):
        async with anyio.create_task_group() as tg:
            tg.start_soon(killer)
            tg.start_soon(session, tg.cancel_scope)


async def kill_cycles(
    data_dir: Path,
    ledger: Ledger,
    rng: random.Random,
    kills: int,
    plan: Callable[[int, random.Random], Plan],
    *,
    env: dict[str, str] = FAST,
    hazard: Hazard | None = None,
    before_start: Callable[[], None] = lambda: None,
) -> int:
    """``kills`` cycles of start, stream, kill, check; returns how many kills came after a call the fault refused."""
    after_faults = 0
    for cycle in range(kills):
        before_start()
        met = ledger.faults_met
        try:
            await run_until_killed(data_dir, ledger, rng, cycle, plan(cycle, rng), env, hazard)
        finally:
            if hazard is not None:
                hazard.lift()
        after_faults += ledger.faults_met > met
        verify(data_dir / "memory.duckdb", ledger)
        assert not ledger.problems, ledger.problems[:5]
    return after_faults


async def last_start(data_dir: Path, ledger: Ledger, rng: random.Random, env: dict[str, str] = FAST) -> None:
    """A last clean start: everything acknowledged is there and the indexes agree."""
    async with Client(server_params(data_dir, env=env), read_timeout_seconds=60) as client:
        await first_checks(client, ledger, rng)
    assert not ledger.problems, ledger.problems[:5]


@pytest.mark.timeout(1800)  # 50 server starts: minutes on a busy 2-core machine, not the suite's usual 300 s
async def test_sigkill_at_random_points_loses_no_acknowledged_write(
    data_dir: Path, record_count: Callable[[str, int], None]
) -> None:
    rng = random.Random(20261122)
    ledger = Ledger()
    await kill_cycles(data_dir, ledger, rng, KILLS, plain_plan)
    await last_start(data_dir, ledger, rng)
    assert ledger.writes > KILLS, "the kills must land among writes"
    record_count("kills", KILLS)
    record_count("acknowledged writes checked", ledger.writes)
    record_count("memories checked at the end", len(ledger.present))


async def a_damaged_database_is_refused(data_dir: Path, errlog: Path) -> None:
    """Damage the database in its middle: the next start refuses it by name and leaves it byte for byte."""
    database = data_dir / "memory.duckdb"
    disks.damage_in_the_middle(database)
    before = (database.read_bytes(), database.stat().st_mtime_ns)
    with errlog.open("w") as err, pytest.raises(ExceptionGroup) as failed, anyio.fail_after(120):
        async with Client(stdio_client(server_params(data_dir), errlog=err), read_timeout_seconds=120) as client:
            await client.call_tool("stats", {})
    stderr = errlog.read_text()
    assert f"The database file {database} cannot be opened" in stderr, (failed.value, stderr[-2000:])
    assert "Traceback" not in stderr, stderr[-2000:]
    assert (database.read_bytes(), database.stat().st_mtime_ns) == before, "the damaged file was written to"


DISK_MB = 32


@pytest.mark.timeout(900)
async def test_kills_on_a_disk_filling_up_lose_no_acknowledged_write_and_keep_no_refused_one(
    tmp_path: Path, record_count: Callable[[str, int], None]
) -> None:
    """The data dir on a 32 MB tmpfs that a growing file fills mid-stream: kills land before, while and after it
    fills; the filler goes after each kill."""
    with disks.small_tmpfs(tmp_path / "disk", DISK_MB) as disk:
        data_dir, filler = disk / "data", disk / "filler"
        ledger = Ledger(faults_expected=True)
        rng = random.Random(20261203)
        env = {**FAST, "HOME": str(tmp_path)}  # its user cache off the small disk
        hazard = Hazard(lambda: disks.fill_gradually(filler), lambda: filler.unlink(missing_ok=True))
        victim = tmp_path / "victim.txt"
        victim.write_text(VICTIM_TEXT)
        after_faults = await kill_cycles(
            data_dir,
            ledger,
            rng,
            VARIANT_KILLS,
            fault_plan,
            env=env,
            hazard=hazard,
            before_start=lambda: plant(data_dir, PLANTED_WHEN_FULL, victim),
        )
        assert victim.read_text() == VICTIM_TEXT, "written through a planted link"
        await last_start(data_dir, ledger, rng, env)
        await a_damaged_database_is_refused(data_dir, tmp_path / "damaged-start.txt")
    assert after_faults > 0, "some kills must come after the full disk refused a call"
    record_count("kills on a disk filling up", VARIANT_KILLS)
    record_count("kills after the full disk refused a call", after_faults)
    record_count("calls refused by a full disk", ledger.faults_met)


@pytest.mark.timeout(900)
async def test_kills_around_a_data_dir_turned_read_only_lose_no_acknowledged_write(
    data_dir: Path, tmp_path: Path, record_count: Callable[[str, int], None]
) -> None:
    data_dir.mkdir(mode=0o700)
    with disks.read_only(data_dir):
        pass  # where this machine cannot make it read-only, the test is skipped here rather than mid-stream

    async def strike() -> None:
        disks.make_read_only(data_dir)

    ledger = Ledger(faults_expected=True)
    rng = random.Random(20261204)
    hazard = Hazard(strike, lambda: disks.make_writable(data_dir))
    after_faults = await kill_cycles(data_dir, ledger, rng, VARIANT_KILLS, fault_plan, hazard=hazard)
    await last_start(data_dir, ledger, rng)
    await a_damaged_database_is_refused(data_dir, tmp_path / "damaged-start.txt")
    assert after_faults > 0, "some kills must come after the read-only data dir refused a call"
    record_count("kills around a read-only data dir", VARIANT_KILLS)
    record_count("kills after the read-only data dir refused a call", after_faults)


# Every name the server writes in its data dir, and those its writers used before (fixed temporary names). Not
# the database and its WAL: DuckDB opens them by name, and the data dir being its owner's alone (0700, see
# tests/robustness/test_data_dir.py) is what keeps others from planting links there. Not owner.lock: a link
# there is refused by name at start (tests/robustness/test_files.py), so no server could start over it.
PLANTED = (
    *("owner.json", "owner.json.partial", "owner.tmp", "owner.sock"),
    *("vectors.usearch", "vectors.usearch.partial", "vectors.usearch.tmp"),
    *("vectors.usearch.json", "vectors.usearch.json.partial", "vectors.usearch.json.tmp"),
    *("memory.duckdb.purge", "memory.duckdb.purge.wal", ".hebbian-write-probe"),
)

# The write probe too (faults._probe runs on a full disk): it once opened its fixed name following links, with
# O_TRUNC, and emptied the victim.
PLANTED_WHEN_FULL = PLANTED


def plant(folder: Path, names: tuple[str, ...], victim: Path) -> None:
    """A link to ``victim`` at each name in ``folder``, in place of what a server left there (a dead owner's
    address and lock, the vector index: all made anew by the next start)."""
    folder.mkdir(mode=0o700, exist_ok=True)
    for name in names:
        path = folder / name
        if not path.is_symlink():
            path.unlink(missing_ok=True)
            path.symlink_to(victim)


def cli(data_dir: Path, *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hebbian_memory", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=base_env(data_dir),
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.timeout(900)
async def test_kills_with_links_planted_at_every_name_written_write_through_none(
    data_dir: Path, tmp_path: Path, record_count: Callable[[str, int], None]
) -> None:
    """Before every start, links to a victim's file at every name the server writes in the data dir; at the end
    the CLI exports and draws the map over links planted at its outputs. The victim is never written to."""
    victim = tmp_path / "victim.txt"
    victim.write_text(VICTIM_TEXT)
    ledger = Ledger()
    rng = random.Random(20261205)
    await kill_cycles(
        data_dir, ledger, rng, VARIANT_KILLS, plain_plan, before_start=lambda: plant(data_dir, PLANTED, victim)
    )
    assert victim.read_text() == VICTIM_TEXT, "written through a planted link"
    plant(data_dir, PLANTED, victim)
    await last_start(data_dir, ledger, rng)
    outputs = tmp_path / "out"
    plant(outputs, ("backup.jsonl", "backup.jsonl.partial", "map.html", "map.html.partial"), victim)
    cli(data_dir, "export", str(outputs / "backup.jsonl"))
    cli(data_dir, "map", "-o", str(outputs / "map.html"))
    assert victim.read_text() == VICTIM_TEXT, "written through a planted link"
    records = [json.loads(line) for line in (outputs / "backup.jsonl").read_text().splitlines()]
    assert {r["content"] for r in records if r["type"] == "memory"} == set(ledger.present.values())
    assert not (outputs / "map.html").is_symlink()
    await a_damaged_database_is_refused(data_dir, tmp_path / "damaged-start.txt")
    record_count("kills with planted links", VARIANT_KILLS)
