"""The gettext catalogs (distribution/locale): English and Chinese hold the same message ids, every id the templates
and the code use is translated in both (no missing, empty or fuzzy entry), placeholders agree, plurals have the
language's number of forms, and lookups pick the right form."""

from __future__ import annotations

import ast
import re
import string
from functools import cache
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from distribution.i18n import LANGUAGES, LOCALE_DIR, catalog_path, ntranslate, translate

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = [*(ROOT / "patentsift/web/templates").glob("*.html"), *(ROOT / "distribution/templates").glob("*.*")]
CODE = [*(ROOT / "patentsift").rglob("*.py"), *(ROOT / "distribution").rglob("*.py")]
# t('key') / tn('key', n) / translate("key", ...) / ntranslate("key", ...) with a literal id
LITERAL = re.compile(r"""\b(?:t|tn|translate|ntranslate)\(\s*['"]([a-z][a-z0-9_.]*)['"]""")
# t('prefix.' ~ x) in Jinja, translate(f"prefix.{x}") in Python: some id must start with the prefix
PREFIX = re.compile(r"""\b(?:t|tn|translate|ntranslate)\(\s*(?:f?['"]([a-z][a-z0-9_.]*\.)(?:['"]\s*~|\{))""")


@cache
def catalog(lang: str) -> Catalog:
    with catalog_path(lang).open("rb") as fp:
        return read_po(fp, locale=lang)


def ids(cat: Catalog) -> set[str]:
    return {m.id if isinstance(m.id, str) else m.id[0] for m in cat if m.id}


def used() -> tuple[set[str], set[str]]:
    """Message ids and id prefixes the templates and the code look up."""
    keys: set[str] = set()
    prefixes: set[str] = set()
    for path in TEMPLATES + CODE:
        text = path.read_text(encoding="utf-8")
        keys.update(LITERAL.findall(text))
        prefixes.update(PREFIX.findall(text))
    return keys - prefixes, prefixes


def key_strings() -> set[str]:
    """String constants in the web code that name a message id indirectly (`message="subs.saved"`): a known
    id prefix, a dot, and lower-case words."""
    known = {i.split(".")[0] for i in ids(catalog("en"))}
    out: set[str] = set()
    for path in (ROOT / "patentsift/web").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                m = re.fullmatch(r"([a-z]+)\.[a-z_]+(\.[a-z_]+)*", node.value)
                if m and m.group(1) in known and not node.value.endswith((".html", ".js", ".css", ".svg", ".json")):
                    out.add(node.value)
    return out


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_english_and_chinese_hold_the_same_ids_as_the_template() -> None:
    en, zh = ids(catalog("en")), ids(catalog("zh"))
    with (LOCALE_DIR / "messages.pot").open("rb") as fp:
        pot = ids(read_po(fp))
    assert en == zh, f"only in en: {sorted(en - zh)}; only in zh: {sorted(zh - en)}"
    assert pot == en, f"only in the .pot: {sorted(pot - en)}; missing from the .pot: {sorted(en - pot)}"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_entry_is_translated_not_fuzzy_with_the_languages_plural_forms(lang: str) -> None:
    cat = catalog(lang)
    assert cat.num_plurals == {"en": 2, "zh": 1}[lang]
    bad = []
    for m in cat:
        if not m.id:
            continue
        forms = m.string if isinstance(m.string, tuple) else (m.string,)
        if m.fuzzy or not all(forms) or (m.pluralizable and len(forms) != cat.num_plurals):
            bad.append(m.id)
    assert not bad, f"{lang}: fuzzy, empty or wrong plural forms: {bad}"


def test_every_id_the_templates_and_code_use_is_in_both_catalogs() -> None:
    keys, prefixes = used()
    keys |= key_strings()
    assert len(keys) > 300 and {"login.submit", "mail.heading", "confirm.button", "search.results"} <= keys
    for lang in LANGUAGES:
        have = ids(catalog(lang))
        assert not sorted(keys - have), f"{lang} lacks {sorted(keys - have)}"
        assert not [p for p in prefixes if not any(i.startswith(p) for i in have)], prefixes


def test_placeholders_agree_between_languages() -> None:
    zh = {m.id: m for m in catalog("zh") if m.id}
    bad = []
    for m in catalog("en"):
        if not m.id:
            continue
        en_forms = m.string if isinstance(m.string, tuple) else (m.string,)
        zh_m = zh[m.id]
        zh_forms = zh_m.string if isinstance(zh_m.string, tuple) else (zh_m.string,)
        names = set().union(*(placeholders(f) for f in en_forms)) - {"n"}
        if any(placeholders(f) - {"n"} != names for f in zh_forms):
            bad.append(m.id)
    assert not bad, bad


def test_lookups_pick_the_plural_form_and_fall_back_to_the_key() -> None:
    assert ntranslate("search.results", 1, "en") == "1 result"
    assert ntranslate("search.results", 3, "en") == "3 results"
    assert ntranslate("search.results", 1, "zh") == ntranslate("search.results", 3, "zh").replace("3", "1")
    assert ntranslate("mail.count", 2, "zh") == "2 件新公开"
    assert translate("nav.search", "zh") == "检索" and translate("nav.search", "fr") == "Search"
    assert translate("no.such.key", "zh") == "no.such.key"
    assert translate("mail.footer", "en", outlet="X") == \
        "You receive this because you subscribed to patent alerts from X."
