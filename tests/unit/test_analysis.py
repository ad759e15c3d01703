"""index.analysis: the tokens both backends index and query (SEMANTICS.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from index.analysis import MAX_TOKEN_LENGTH, analyze, analyze_spans, is_cjk


@pytest.mark.parametrize(("text", "tokens"), [
    ("Lithium-Ion BATTERY cells", ["lithium", "ion", "battery", "cells"]),
    ("don't stop", ["don't", "stop"]),  # apostrophe between letters joins
    ("U.S.A. and e.g. fig.1", ["u.s.a", "and", "e.g", "fig", "1"]),  # '.' joins letters, not letter+digit
    ("1,000.5 mm and 3.5V", ["1,000.5", "mm", "and", "3.5v"]),  # digits join over ',' and '.'
    ("foo_bar H02J 50/10 wi-fi", ["foo_bar", "h02j", "50", "10", "wi", "fi"]),
    ("Ærø CAFÉ naïve Ω", ["ærø", "café", "naïve", "ω"]),
    ("cafe\u0301", ["cafe\u0301"]),  # a combining mark stays with its letter
    ("...", []),
    ("", []),
])
def test_word_tokens(text: str, tokens: list[str]) -> None:
    assert analyze(text) == tokens


def test_cjk_runs_become_overlapping_bigrams() -> None:
    assert analyze("一种医用放射治疗装置") == ["一种", "种医", "医用", "用放", "放射", "射治", "治疗", "疗装", "装置"]
    assert analyze("放射 治疗") == ["放射", "治疗"]  # a space ends a run
    assert analyze("第1剂") == ["第", "1", "剂"]  # a lone CJK character is a unigram
    assert analyze("X线放射") == ["x", "线放", "放射"]  # a Latin letter is its own token
    assert analyze("プログラム・モデル") == ["プロ", "ログ", "グラ", "ラム", "モデ", "デル"]  # middle dot separates
    assert analyze("한국어") == ["한국", "국어"]


def test_full_width_forms_fold_to_ascii() -> None:
    assert analyze("ＡＢＣ１２３，ｘｙ") == ["abc123", "xy"]


def test_long_tokens_are_split() -> None:
    tokens = analyze("a" * (MAX_TOKEN_LENGTH + 10))
    assert [len(t) for t in tokens] == [MAX_TOKEN_LENGTH, 10]


def test_spans_point_into_the_original_text() -> None:
    text = "Ｘ-ray 放射治疗 DEVICE"
    spans = analyze_spans(text)
    assert [t for t, _, _ in spans] == analyze(text)
    assert [text[s:e] for _, s, e in spans] == ["Ｘ", "ray", "放射", "射治", "治疗", "DEVICE"]


def test_is_cjk() -> None:
    assert is_cjk("放射") and is_cjk("abcの") and not is_cjk("abc") and not is_cjk("ω")


def test_fast_path_agrees_with_spans_on_real_text(shared_patents: Path) -> None:
    """analyze() takes a findall fast path for non-CJK text; it must give exactly the tokens of analyze_spans."""
    for name in ("uspto-grant/single/US11646472B2-20230509.xml", "cn/CN115212463A-20221021.xml"):
        text = (shared_patents / name).read_text(encoding="utf-8-sig")[:60000]
        tokens = analyze(text)
        assert len(tokens) > 1000
        assert tokens == [t for t, _, _ in analyze_spans(text)]
        assert all(t == t.lower() and " " not in t for t in tokens)


def test_fast_path_equals_exact_rules_on_real_text(shared_patents) -> None:
    """`analyze` takes a fast path for text without CJK; it must give exactly the UAX #29 reference tokens."""
    from harvest.files import iter_raw_documents
    from harvest.formats import parse_raw
    from harvest.raw import RawDocument, Reject
    from index.analysis import _analyze_exact
    from index.fields import index_fields

    texts = ["don't stop u.s.a 1,000.5 a.1 x,y 3.5mm applicant\u2019s e.g. \u2018Beka\u2019 \uff26\uff55\uff4c\uff4c",
             "na\u00efve caf\u00e9", "a__b 1_000 x:y:z", "e\u0301t\u00e9 co\u00f6p"]
    for path in sorted((shared_patents / "uspto-grant" / "single").glob("*.xml")) + sorted(
            (shared_patents / "ep" / "publication-server").glob("*.xml")):
        for raw in iter_raw_documents(path):
            if isinstance(raw, RawDocument):
                try:
                    docs = parse_raw(raw)
                except Reject:
                    continue
                fields = index_fields(docs[0])
                texts += [fields[k] or "" for k in ("ti", "ab", "cl", "desc", "pa", "in")]
    assert len(texts) > 50
    for text in texts:
        assert analyze(text) == _analyze_exact(text)


def _fts_tokens(texts: list[str]) -> list[list[str]]:
    """The tokens a real FTS5 table with the embedded index's tokenizer makes of each text, in order."""
    import sqlite3

    from index.embedded.schema import _FTS_TOKENIZE

    conn = sqlite3.connect(":memory:")
    conn.execute(f'CREATE VIRTUAL TABLE t USING fts5(x, tokenize="{_FTS_TOKENIZE}")')
    conn.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, instance)")
    conn.executemany("INSERT INTO t(rowid, x) VALUES (?, ?)", list(enumerate(texts, start=1)))
    out: list[list[str]] = [[] for _ in texts]
    for term, doc in conn.execute("SELECT term, doc FROM v ORDER BY doc, offset"):
        out[doc - 1].append(term)
    conn.close()
    return out


def test_index_text_gives_the_analyzed_tokens_to_fts5(shared_patents: Path) -> None:
    """The embedded index stores `index_text` (mostly the lower-cased text with a few marks blanked) and lets
    FTS5's ascii tokenizer cut the tokens: they must be exactly `analyze`'s, on real and on awkward text."""
    import random

    from index.analysis import index_text

    texts = ["don't stop u.s.a 1,000.5 a.1 x,y 3.5mm applicant\u2019s e.g. \u2018Beka\u2019 \uff26\uff55\uff4c\uff4c",
             "na\u00efve caf\u00e9 \u00b5m 90\u00b0 \u00b1 5 a\u00a0b x\u2014y \u00d7 \u2264", "a__b 1_000 x:y:z a::b 1;2 a;b 1:2",
             "cafe\u0301 \u4e00\u79cd\u88c5\u7f6e X\u7ebf", "a" * 300 + " b", "x " + "1,2" * 200, "(a) [b] {c} <d> 'e' \"f\"",
             "K\u212a \u1e9e\u00df ABC\uff21\uff22", ".,:;'", ""]
    alphabet = list("aZ09_ .,:;'\u2019\u2018\u00b7-/()\n\t") + ["\u00e9", "\u03a9", "\u0301", "\u653e", "\uff58",
                                                                "\uff0c", "\u00a0", "\u2024", "\u00b5", "\u00b0"]
    rng = random.Random(12)
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 14))) for _ in range(3000)]
    for name in ("uspto-grant/single/US11646472B2-20230509.xml", "cn/CN115212463A-20221021.xml"):
        texts.append((shared_patents / name).read_text(encoding="utf-8-sig")[:60000])
    assert _fts_tokens([index_text(t) for t in texts]) == [analyze(t) for t in texts]
