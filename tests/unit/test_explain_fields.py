"""Explanations tell every field that scored, the description included, and title classes (matching/explain.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from distribution.ipc_titles import subclass_title
from harvest.ingest import parse_path
from index.query.parser import parse_query
from matching.explain import Explanation, describe, description_highlights, matched_terms, query_phrases


@pytest.fixture(scope="module")
def grant(shared_patents: Path):  # noqa: ANN201
    """A real US grant with a long description."""
    docs = list(parse_path(shared_patents / "uspto-grant" / "weekly" / "ipg130416.xml",
                           fetched_at="2026-01-01T00:00:00+00:00"))
    return next(d for d in docs if d.id == "US-08421353-B2")


def test_query_phrases_cover_the_clauses_that_search_the_description() -> None:
    q = parse_query('sealing OR desc:"organic layer" OR ti:display OR desc:encapsul* NOT desc:glass')
    assert query_phrases(q) == [(("sealing",), False), (("organic", "layer"), False), (("encapsul",), True)]
    assert query_phrases(parse_query("ti:display")) == []


def test_description_snippets_mark_what_matched(grant) -> None:  # noqa: ANN001
    assert "planarization" in grant.description.lower()  # a description word, not in the title or abstract
    snippets = description_highlights(parse_query("desc:planarization OR ti:nothingsuch"), grant.description)
    assert 1 <= len(snippets) <= 2
    assert all("<mark>" in s and len(s) < 400 for s in snippets)
    assert matched_terms({"desc": snippets}) == ["planarization"]
    phrase = description_highlights(parse_query('"organic light emitting"'), grant.description)
    assert phrase and "<mark>organic light emitting</mark>" in phrase[0].lower()
    assert description_highlights(parse_query("desc:zzzqqq"), grant.description) == []
    assert description_highlights(parse_query("desc:planarization"), "") == []


def test_description_snippets_escape_html_and_find_chinese() -> None:
    text = "本发明涉及一种医用放射治疗装置 <b>x</b>，包括旋转机架。"
    out = description_highlights(parse_query("放射治疗"), text)
    assert out and "<mark>放射治疗</mark>" in out[0] and "&lt;b&gt;" in out[0]


def test_describe_shows_the_description_and_class_titles_in_the_readers_language() -> None:
    exp = Explanation(terms=["sealant"], snippets={"desc": ["the <mark>sealant</mark> is cured"]},
                      classes=["H01L51/52", "Q99Z1/00"], learned_from=12)
    zh = describe(exp, class_title=lambda c: subclass_title(c, "zh"))
    assert "description: the <mark>sealant</mark> is cured" in zh
    assert "classes: H01L51/52 (半导体器件；其他类目中不包括的电固体器件), Q99Z1/00" in zh
    en = describe(exp, class_title=lambda c: subclass_title(c, "en"))
    assert any(line.startswith("classes: H01L51/52 (Semiconductor devices") for line in en)
    assert "classes: H01L51/52, Q99Z1/00" in describe(exp)  # no titles given: symbols as before
    assert any("classifier learned from 12 judgements" in line for line in zh)


def test_digest_lines_title_the_classes_in_the_subscribers_language() -> None:
    from distribution.digest import why_lines

    exp = Explanation(classes=["H01L51/52"])
    assert why_lines(exp, "zh") == ["分类号: H01L51/52 (半导体器件；其他类目中不包括的电固体器件)"]
    assert why_lines(exp, "en")[0].startswith("Classification: H01L51/52 (Semiconductor devices")
