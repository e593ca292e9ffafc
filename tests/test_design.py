"""DESIGN.md stays true to the code: every repository path it names exists, and it is a real document."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DESIGN = ROOT / "DESIGN.md"
_PATH = re.compile(r"`((?:common|geo|bio|plugins|tests|benchmarks|examples)/[\w./<>-]+?)`")


def _named_paths(text: str) -> list[str]:
    return [p for p in _PATH.findall(text) if "<" not in p]


def test_design_note_is_long_enough_to_guide_a_newcomer():
    text = DESIGN.read_text(encoding="utf-8")
    assert len(text.splitlines()) >= 60
    for heading in ("## Core types", "## The dependency rule", "## Non-goals"):
        assert heading in text
    assert sum(line.startswith("## Recipe") for line in text.splitlines()) >= 3


def test_every_path_in_the_design_note_exists():
    paths = _named_paths(DESIGN.read_text(encoding="utf-8"))
    assert len(paths) >= 20
    missing = [p for p in paths if not (ROOT / p.rstrip("/")).exists()]
    assert not missing, f"DESIGN.md names paths that do not exist: {missing}"


def test_path_pattern_finds_paths_and_skips_placeholders():
    assert _named_paths("see `geo/io/emit.py` and `geo/io/<format>.py`, not `ppm·m`") == ["geo/io/emit.py"]
