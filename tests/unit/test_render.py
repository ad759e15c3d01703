"""Digest rendering (pure): HTML escaping, highlights, office links, zh/en strings, text version, MIME message."""

from __future__ import annotations

from email import message_from_bytes, policy
from pathlib import Path

import pytest

from distribution.delivery import Links, SmtpSettings, build_message, message_id_for
from distribution.digest import Digest, DigestGroup, digest_item, split_marks
from distribution.ipc_titles import IPC_SUBCLASS_TITLES, subclass_title
from distribution.links import office_link
from distribution.render import OutletIdentity, period_label, render_digest
from harvest.ingest import parse_path
from index.model import PatentDocument, PublicationNumber

UNSUB = "https://news.example.org/unsubscribe?token=abc.def"


@pytest.fixture(scope="module")
def docs(shared_patents: Path) -> dict[str, PatentDocument]:
    out: dict[str, PatentDocument] = {}
    for folder in ("uspto-grant/single", "cn", "jp"):
        out.update({d.id: d for d in parse_path(shared_patents / folder)})
    return out


def _digest(docs: dict[str, PatentDocument], lang: str) -> Digest:
    us = next(d for d in docs.values() if d.pn.country == "US" and d.abstract())
    cn = next(d for d in docs.values() if d.pn.country == "CN" and d.title("zh"))
    word = us.abstract().split()[3]
    exp = {"terms": [word.lower()], "snippets": {"ab": [f"x &lt;y&gt; <mark>{word}</mark> z"]},
           "classes": ["H01L21/02"], "seed": cn.id, "seed_similarity": 0.81}
    a = digest_item(1, "semis", us, exp, lang, note="<b>check</b> & compare", pinned=True, score=0.9)
    b = digest_item(2, "general", cn, None, lang, score=0.5)
    return Digest(7, "weekly:2026-W48", lang, [DigestGroup("semis", [a]), DigestGroup("general", [b])])


def test_html_is_escaped_highlighted_and_linked(docs: dict[str, PatentDocument]) -> None:
    digest = _digest(docs, "en")
    out = render_digest(digest, unsubscribe_url=UNSUB, manage_url="https://news.example.org/manage?token=m")
    assert out.html is not None
    assert "&lt;b&gt;check&lt;/b&gt; &amp; compare" in out.html  # the curator's note cannot inject markup
    assert "x &lt;y&gt; <b style" in out.html  # the snippet's own escaping kept, the mark rendered bold
    for item in digest.items:
        assert f'href="{item.link}"' in out.html.replace("&amp;", "&")
        assert item.publication_number in out.html and item.publication_number in out.text
    assert UNSUB in out.html and UNSUB in out.text
    assert "Recommended" in out.html and "Why it matched" in out.html and "Curator&#39;s note" in out.html
    assert out.subject == "Patent digest — week 48, 2026: 2 new publications"
    assert "weekly:2026-W48" not in out.html + out.text and "(week 48, 2026)" in out.text
    assert f"x <y> *{digest.items[0].snippet[1].text}* z" in out.text  # plain text: unescaped, marks as *..*
    assert "<mark>" not in out.text and "<b style" not in out.text


def test_chinese_rendering(docs: dict[str, PatentDocument]) -> None:
    digest = _digest(docs, "zh")
    out = render_digest(digest, unsubscribe_url=UNSUB)
    cn = digest.items[1]
    assert cn.title == docs[cn.doc_id].title("zh") and cn.title in out.html and cn.title in out.text
    assert out.subject == "专利快讯 — 2026年第48周：2 件新公开"
    assert "专利快讯" in out.subject and "退订" in out.html and "推荐理由" in out.html and "审核员备注" in out.text
    assert 'lang="zh-CN"' in out.html and "Unsubscribe" not in out.html
    assert "与种子专利" in digest.items[0].why[-1]


def test_text_only_and_mime_message(docs: dict[str, PatentDocument]) -> None:
    digest = _digest(docs, "en")
    links = Links(UNSUB, "mailto:unsub@example.org?subject=unsubscribe%20abc", "https://news.example.org/m")
    settings = SmtpSettings(from_address="digest@example.org")
    mid = message_id_for(7, "weekly:2026-W48")
    assert mid == message_id_for(7, "weekly:2026-W48") != message_id_for(8, "weekly:2026-W48")
    both = message_from_bytes(build_message(render_digest(digest, unsubscribe_url=UNSUB), to="r@example.com",
                                            settings=settings, message_id=mid, links=links).as_bytes(),
                              policy=policy.default)
    assert both.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in both.iter_parts()] == ["text/plain", "text/html"]
    assert both["Message-ID"] == mid and both["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert both["List-Unsubscribe"] == f"<{UNSUB}>, <{links.unsubscribe_mailto}>"
    text = build_message(render_digest(digest, unsubscribe_url=UNSUB, fmt="text"), to="r@example.com",
                         settings=settings, message_id=mid, links=links)
    assert text.get_content_type() == "text/plain" and not text.is_multipart()


def test_office_links() -> None:
    assert office_link(PublicationNumber.parse("US-11646472-B2")).startswith("https://ppubs.uspto.gov/")
    assert "db=US-PGPUB" in office_link(PublicationNumber.parse("US-20130012345-A1"))
    assert office_link(PublicationNumber.parse("CN-104223352-A")).endswith("/CN104223352A")
    assert "/JP-2021-041306/11/" in office_link(PublicationNumber.parse("JP-2021041306-A"))
    assert "espacenet" in office_link(PublicationNumber.parse("EP-1605745-A1"))


def test_split_marks() -> None:
    segs = split_marks("a &amp; <mark>b</mark> c")
    assert [(s.text, s.marked) for s in segs] == [("a & ", False), ("b", True), (" c", False)]


@pytest.mark.parametrize(("key", "en", "zh"), [
    ("weekly:2026-W48", "week 48, 2026", "2026年第48周"),
    ("weekly:2026-W53", "week 53, 2026", "2026年第53周"),
    ("daily:2026-11-25", "25 November 2026", "2026年11月25日"),
    ("monthly:2026-01", "January 2026", "2026年1月"),
    ("cron:2026-11-25T08:00:00+08:00", "25 November 2026, 08:00", "2026年11月25日 08:00"),
    ("monthly:2026-13", "monthly:2026-13", "monthly:2026-13"),  # malformed keys are shown as they are
    ("p7", "p7", "p7"),
])
def test_period_labels(key: str, en: str, zh: str) -> None:
    assert (period_label(key, "en"), period_label(key, "zh")) == (en, zh)


def test_subject_counts_one_and_many(docs: dict[str, PatentDocument]) -> None:
    one = _digest(docs, "en")
    one.groups = one.groups[:1]
    one.period_key = "monthly:2026-11"
    assert render_digest(one, unsubscribe_url=UNSUB).subject == "Patent digest — November 2026: 1 new publication"
    empty = Digest(7, "daily:2026-11-25", "zh", [])
    out = render_digest(empty, unsubscribe_url=UNSUB)
    assert out.subject == "专利快讯 — 2026年11月25日：无新公开" and "本期没有新公开的专利" in out.text
    assert "0 件" not in out.text and "为您精选" not in out.text  # a short note, no "0 selected for you"


def _every_document(roots: list[Path]) -> list[PatentDocument]:
    out: list[PatentDocument] = []
    for root in roots:
        out.extend(parse_path(root))  # sequence listings, SGML and other unsupported files are skipped
    return out


def test_every_subclass_in_the_data_has_both_titles(shared_patents: Path) -> None:
    sample = Path(__file__).resolve().parents[2] / "patentsift" / "sample_data" / "uspto"
    docs = _every_document([sample, shared_patents])
    subclasses = {c.subclass_symbol for d in docs for c in [*d.ipc, *d.cpc] if c.subclass_symbol}
    assert len(docs) > 100 and len(subclasses) > 100
    assert sorted(subclasses - set(IPC_SUBCLASS_TITLES)) == []
    for en, zh in IPC_SUBCLASS_TITLES.values():
        assert en[0].isupper() and en == en.strip() and not en.isupper()  # sentence case, not the raw CAPITALS
        assert zh and all(ch not in zh for ch in ";,") and any("\u4e00" <= ch <= "\u9fff" for ch in zh)


def test_main_classification_title_in_the_digest(docs: dict[str, PatentDocument]) -> None:
    assert subclass_title("A42B 1/06") == "Hats; head coverings" and subclass_title("A42B1/06", "zh") == "帽子；头部覆盖物"
    assert subclass_title("Z99Z 1/00") is None
    us = next(d for d in docs.values() if d.pn.country == "US" and d.ipc)
    for lang in ("en", "zh"):
        item = digest_item(1, "p", us, None, lang)
        title = subclass_title(item.main_class or "", lang)
        assert title and item.main_class_title == title
        out = render_digest(Digest(1, "weekly:2026-W48", lang, [DigestGroup("p", [item])]), unsubscribe_url=UNSUB)
        assert f"{item.main_class} - {title}" in out.text and title in (out.html or "")


def test_curation_status_words_are_translated() -> None:
    import patentsift.web.routes_curation  # noqa: F401 - registers the curation strings
    from patentsift.web.i18n import translate

    labels = {st: (translate(f"curation.status.{st}", "en"), translate(f"curation.status.{st}", "zh"))
              for st in ("pending", "approved", "rejected", "all")}
    assert labels["approved"] == ("approved", "已通过") and labels["pending"][1] == "待审核"
    assert all(zh != en and "curation." not in zh for en, zh in labels.values())


def test_feedback_links_and_outlet_footer(docs: dict[str, PatentDocument]) -> None:
    def feedback(item_id: int, relevant: bool) -> str:
        return f"https://news.example.org/feedback?token=i{item_id}-{'yes' if relevant else 'no'}&x=1"

    identity = OutletIdentity(name="Shanghai <outlet> & co", sender_name="SH alerts",
                              contact_address="100 Road, Shanghai · ip@sh.example", footer_note="Office hours 9-17")
    for lang, words in (("en", ("Relevant", "Not relevant", "Contact")), ("zh", ("相关", "不相关", "联系方式"))):
        digest = _digest(docs, lang)
        out = render_digest(digest, unsubscribe_url=UNSUB, feedback_url=feedback, identity=identity)
        assert out.html is not None
        for item in digest.items:
            for relevant in (True, False):
                url = feedback(item.review_id, relevant)
                assert f'href="{url.replace("&", "&amp;")}"' in out.html and url in out.text
        assert all(w in out.html and w in out.text for w in words)
        assert "Shanghai &lt;outlet&gt; &amp; co" in out.html and "Shanghai <outlet> & co" in out.text
        assert "100 Road, Shanghai · ip@sh.example" in out.text and "Office hours 9-17" in out.html
    plain = render_digest(_digest(docs, "en"), unsubscribe_url=UNSUB)  # no feedback links, the default identity
    assert "feedback" not in plain.text and "Relevant" not in plain.text and "patentsift" in plain.text
