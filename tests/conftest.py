"""Shared test fixtures: where the real patent-office documents live."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_PATENTS = Path(os.environ.get("PATENTSIFT_SHARED_DATA", ROOT.parent / "shared" / "data" / "patents")).resolve()
SAMPLE_DATA = ROOT / "patentsift" / "sample_data"


@pytest.fixture(scope="session")
def shared_patents() -> Path:
    """The real documents in ../shared/data/patents (CI lays shared/ beside the clone)."""
    if not (SHARED_PATENTS / "INDEX.csv").exists():
        pytest.fail(f"real patent fixtures not found at {SHARED_PATENTS} (set PATENTSIFT_SHARED_DATA)")
    return SHARED_PATENTS


@pytest.fixture(scope="session")
def patent_index(shared_patents: Path) -> list[dict[str, str]]:
    """Rows of INDEX.csv: doc_id, pub_date, format, lang, file, index, bytes, title, abstract_chars, n_class, ..."""
    with open(shared_patents / "INDEX.csv", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs the Elasticsearch node `es` (it uses the es_url fixture, or runs with the
    "es" backend parameter), so `scripts/test -m "not es"` runs everything else without a node."""
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "es_url" in getattr(item, "fixturenames", ()) or "es" in params.values():
            item.add_marker(pytest.mark.es)
