"""The message catalogs (distribution/locale/<lang>/LC_MESSAGES/messages.po, gettext with Babel) shared by the web
app and the mails: read once per process, compiled in memory, looked up by key-style message id (pure)."""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "en"
DOMAIN = "messages"


def catalog_path(lang: str) -> Path:
    """Where the .po catalog of `lang` lives."""
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def translations(lang: str) -> Translations:
    """The gettext translations of `lang` (an unknown language gets English), with English as the fallback."""
    lang = lang if lang in LANGUAGES else DEFAULT_LANGUAGE
    with catalog_path(lang).open("rb") as fp:
        catalog = read_po(fp, locale=lang, domain=DOMAIN)
    mo = io.BytesIO()
    write_mo(mo, catalog)  # fuzzy entries are left out, as msgfmt does
    mo.seek(0)
    out = Translations(mo, domain=DOMAIN)
    if lang != DEFAULT_LANGUAGE:
        out.add_fallback(translations(DEFAULT_LANGUAGE))
    return out


def translate(key: str, lang: str, **values: Any) -> str:
    """The text of message id `key` in `lang` (else English, else the key itself: a missing string shows, not fails),
    `str.format`ted with `values` when any are given."""
    text = translations(lang).gettext(key)
    return text.format(**values) if values else text


def ntranslate(key: str, n: int, lang: str, **values: Any) -> str:
    """The plural form of message id `key` for `n` in `lang` ("1 document" / "3 documents"; Chinese has one
    form), formatted with `n` and `values`."""
    return translations(lang).ngettext(key, key, n).format(n=n, **values)


def language_of(tag: str | None) -> str:
    """A contact's language tag ('zh-CN', 'en-GB', None) as one of LANGUAGES."""
    return "zh" if str(tag or "").lower().startswith("zh") else DEFAULT_LANGUAGE
