"""How a request's language is chosen (pure); the UI strings are the gettext catalogs of distribution/i18n.py
(distribution/locale/<lang>/LC_MESSAGES/messages.po), shared with the mails."""

from __future__ import annotations

from distribution.i18n import DEFAULT_LANGUAGE, LANGUAGES, ntranslate, translate

__all__ = ["DEFAULT_LANGUAGE", "LANGUAGES", "negotiate", "ntranslate", "translate"]


def negotiate(accept_language: str | None) -> str:
    """The first supported language in an Accept-Language header (quality order), else the default."""
    if not accept_language:
        return DEFAULT_LANGUAGE
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        ranked.append((-q, i, tag.strip().lower().split("-")[0]))
    for _, _, lang in sorted(ranked):
        if lang in LANGUAGES:
            return lang
    return DEFAULT_LANGUAGE
