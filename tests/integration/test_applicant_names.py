"""Conformance of the ApplicantNames ability (index.base): both backends list every stored applicant name, as
the applicant facet normalizes it, with its document count, in the same order, and the applicant watch finds a
company's stored names through it."""

from __future__ import annotations

from collections import Counter

from index.base import ApplicantNames, Index
from index.fields import index_fields
from index.model import PatentDocument
from patentsift.applicant_watch import watch_matches
from tests.integration.test_conformance import backend, corpus, opened  # noqa: F401 - the shared fixtures


def expected_names(docs: list[PatentDocument]) -> list[tuple[str, int]]:
    counts: Counter[str] = Counter()
    for d in docs:
        counts.update(set(index_fields(d)["applicant_norm"]))
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def test_every_applicant_name_with_its_count(backend: Index, corpus: list[PatentDocument]) -> None:  # noqa: F811
    assert isinstance(backend, ApplicantNames)
    got = [(v.value, v.count) for v in backend.applicant_names()]
    want = expected_names(corpus)
    assert len(want) > 20  # more than one facet's worth: the whole list, not the top 20
    assert got == want


def test_watch_finds_the_stored_spelling(backend: Index) -> None:  # noqa: F811
    found = watch_matches(backend, ["PolyPlus Battery Co.", "Raytheon Company", "Nobody Ltd"], cache=False)
    assert [v.value for v in found["PolyPlus Battery Co."]] == ["POLYPLUS BATTERY"]
    assert [v.value for v in found["Raytheon Company"]] == ["RAYTHEON"] and found["Raytheon Company"][0].count >= 1
    assert found["Nobody Ltd"] == []
