"""Symlinks planted where a writer works, as another local user who can write into that folder would plant them."""

import stat
from pathlib import Path

VICTIM_TEXT = "the victim's own words"


def plant_links(target: Path, *old_names: str) -> Path:
    """A victim's file, and symlinks to it at ``target`` and at each name a writer of ``target`` used to open."""
    victim = target.parent / "victim.txt"
    victim.write_text(VICTIM_TEXT)
    for name in (target.name, *old_names):
        (target.parent / name).symlink_to(victim)
    return victim


def assert_untouched(victim: Path) -> None:
    assert victim.read_text() == VICTIM_TEXT, "written through a planted link"


def assert_private_regular_file(path: Path) -> None:
    mode = path.lstat().st_mode
    assert stat.S_ISREG(mode), f"{path} is a regular file, not a link"
    assert stat.S_IMODE(mode) == 0o600
