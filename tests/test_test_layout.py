"""The test tree itself: pytest imports test modules by basename (no packages under tests/), so
two test files with the same name in tests/ and tests/browser/ stop the whole collection."""

from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def test_test_module_basenames_are_unique():
    names = Counter(p.name for p in ROOT.rglob("test_*.py"))
    assert [n for n, c in names.items() if c > 1] == []
