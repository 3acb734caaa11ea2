"""Makes docs/map.png: one LoCoMo development conversation remembered session by session, each question of it
recalled twice in one session (so co-access links form), a consolidation pass a few days later, then
`hebbian-memory map` and a headless Chromium screenshot.

    uv run python docs/make_map_screenshot.py      # needs ../shared/data and /usr/bin/chromium
"""

import json
import subprocess
import tempfile
from datetime import timedelta
from pathlib import Path

from bench.locomo import DATA, sessions
from click.testing import CliRunner
from tests.cli.test_map import FLAGS

from hebbian_memory.app.wiring import build_embedder, open_service
from hebbian_memory.cli import main
from hebbian_memory.clock import ManualClock
from hebbian_memory.config import load_settings
from hebbian_memory.models import MemoryInput

OUT = Path(__file__).with_name("map.png")


def fill(data_dir: Path) -> None:
    sample = json.loads(DATA.read_text())[0]
    settings = load_settings(env={}, overrides={"data_dir": str(data_dir)})
    parts = sessions(sample["conversation"])
    clock = ManualClock(parts[0][0])
    service = open_service(settings, clock, build_embedder(settings))
    service.warm_up()
    for when, turns in parts:
        clock.advance(max(when - clock.now(), timedelta(0)))
        session = service.start_session("stdio")
        items = [MemoryInput(content=t["text"], metadata={"speaker": t["speaker"]}) for t in turns if t.get("text")]
        service.remember_many(items, session)
        service.end_session(session)
    session = service.start_session("stdio")
    for qa in sample["qa"][:60]:
        for _ in range(2):
            service.recall(str(qa["question"]), k=5, session_id=session)
    service.end_session(session)
    clock.advance(timedelta(days=3))
    service.consolidate()
    service.close()


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as folder:
        fill(Path(folder) / "data")
        page = Path(folder) / "map.html"
        CliRunner().invoke(
            main, ["--data-dir", str(Path(folder) / "data"), "map", "-o", str(page)], catch_exceptions=False
        )
        subprocess.run(
            [
                "chromium",
                *FLAGS,  # the map test's: headless, offline, no first-run work
                f"--user-data-dir={folder}/profile",
                f"--screenshot={OUT}",
                "--window-size=1400,900",
                page.as_uri() + "?q=adoption",
            ],
            check=True,
            capture_output=True,
        )
    print(f"wrote {OUT}")
