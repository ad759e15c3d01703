"""Text analysis shared by indexing and querying (see index/query/SEMANTICS.md).

Mirrors Elasticsearch's `standard` tokenizer + `cjk_width` + `lowercase` + `cjk_bigram`: Unicode word tokens
(UAX #29-style joins such as `don't`, `1,000.5`, `u.s.a`), lower-cased, no stemming or stop words; runs of
CJK characters (Han, Hiragana, Katakana, Hangul) become overlapping bigrams (a lone CJK character a unigram).
"""

from __future__ import annotations

import re
import sys
import unicodedata
from functools import cache

MAX_TOKEN_LENGTH = 255  # the standard tokenizer's default: longer tokens are split at this length

_CJK_RANGES = (
    "\u1100-\u11ff"  # Hangul Jamo
    "\u3005-\u3007"  # ideographic iteration mark, closing mark, number zero
    "\u3041-\u3096\u3099-\u309f"  # Hiragana (with voicing marks)
    "\u30a1-\u30fa\u30fc-\u30ff"  # Katakana (not the middle dot U+30FB)
    "\u3131-\u318e\u31f0-\u31ff"  # Hangul compatibility Jamo, Katakana phonetic extensions
    "\u3400-\u4dbf\u4e00-\u9fff"  # CJK unified ideographs (+ extension A)
    "\ua960-\ua97f\uac00-\ud7af\ud7b0-\ud7ff"  # Hangul
    "\uf900-\ufaff"  # CJK compatibility ideographs
    "\uff66-\uff9f"  # half-width Katakana
    "\U0001b000-\U0001b16f"  # Kana supplement / extended
    "\U00020000-\U0003134f"  # CJK unified ideographs extensions B-G
)
_MID_LETTER = ":\u00b7\u0387\u05f4\u2027\ufe13\ufe55"  # UAX #29 MidLetter (the full-width colon is
_MID_NUM = ",;\u037e\u0589\u060c\u060d\u066c\u07f8\u2044\ufe10\ufe14\ufe50\ufe54"  # ... mapped to ':' first)
_MID_NUM_LET = ".'\u2018\u2019\u2024\ufe52"
MID_CHARS = _MID_LETTER + _MID_NUM + _MID_NUM_LET
"""Punctuation that can occur inside a token (between letters or digits); everything else separates."""


def _width_table() -> dict[int, str]:
    """cjk_width: full-width ASCII variants -> ASCII, half-width Katakana -> full-width (one char each)."""
    table = {cp: chr(cp - 0xFEE0) for cp in range(0xFF01, 0xFF5F)}
    for cp in range(0xFF65, 0xFFA0):
        folded = unicodedata.normalize("NFKC", chr(cp))
        if len(folded) == 1:
            table[cp] = folded
    return table


_WIDTH = _width_table()


@cache
def _extend_class() -> str:
    """Regex class body for characters that attach to the preceding one (combining marks, format chars)."""
    ranges: list[tuple[int, int]] = []
    for cp in range(sys.maxunicode + 1):
        cat = unicodedata.category(chr(cp))
        if cat in ("Mn", "Mc", "Me") or (cat == "Cf" and cp != 0x200B):
            if ranges and ranges[-1][1] == cp - 1:
                ranges[-1] = (ranges[-1][0], cp)
            else:
                ranges.append((cp, cp))
    return "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges)


@cache
def _token_re() -> re.Pattern[str]:
    ext = _extend_class()
    letter = rf"[^\W\d_{_CJK_RANGES}]"
    mid_l = re.escape(_MID_LETTER + _MID_NUM_LET)
    mid_n = re.escape(_MID_NUM + _MID_NUM_LET)
    run = rf"[^\W{_CJK_RANGES}]+(?:[{ext}]+[^\W{_CJK_RANGES}]*)*"  # letters, digits, `_` and their marks
    # UAX #29: letter MID letter and digit MID digit stay one token (`don't`, `u.s.a`, `1,000.5`).
    join = (rf"(?:[{mid_l}](?:(?<={letter}[{mid_l}])|(?<=[{ext}][{mid_l}]))(?={letter})"
            rf"|[{mid_n}](?<=[\d{ext}][{mid_n}])(?=\d))")
    cjk = rf"(?:[{_CJK_RANGES}][{ext}]*)+"
    return re.compile(rf"{run}(?:{join}{run})*|{cjk}")


def analyze_spans(text: str) -> list[tuple[str, int, int]]:
    """Tokens with their [start, end) character offsets in `text` (for highlighting)."""
    if not text:
        return []
    folded = text.translate(_WIDTH)  # one char per char: offsets stay valid
    out: list[tuple[str, int, int]] = []
    for m in _token_re().finditer(folded):
        start, end = m.span()
        if not _cjk_re().match(folded, start):
            for i in range(start, end, MAX_TOKEN_LENGTH):
                j = min(i + MAX_TOKEN_LENGTH, end)
                out.append((folded[i:j].lower(), i, j))
        else:
            out.extend(_bigrams(folded, start, end))
    return out


def _bigrams(text: str, start: int, end: int) -> list[tuple[str, int, int]]:
    """Overlapping bigrams of the CJK characters in text[start:end] (marks stay with their character)."""
    chars: list[tuple[int, int]] = []
    ext = re.compile(f"[{_extend_class()}]")
    i = start
    while i < end:
        j = i + 1
        while j < end and ext.match(text, j):
            j += 1
        chars.append((i, j))
        i = j
    if len(chars) == 1:
        a, b = chars[0]
        return [(text[a:b].lower(), a, b)]
    return [(text[a:d].lower(), a, d) for (a, _), (_, d) in zip(chars, chars[1:], strict=False)]


_ASCII_BYTES = bytes(range(128))


def _plain_text_check(text: str) -> tuple[bool, bool]:
    """(fast path allowed, width folding needed): no CJK and no combining/format characters in `text`."""
    if text.isascii():
        return True, False
    return _rare_check(_rare_chars(text.encode()))


def _rare_chars(encoded: bytes) -> set[str]:
    """The non-ASCII characters of a text, from its UTF-8."""
    return set(encoded.translate(None, _ASCII_BYTES).decode())


def _rare_check(rare: set[str]) -> tuple[bool, bool]:
    if _cjk_re().search("".join(rare)) or any(map(_is_extend, rare)):
        return False, True
    return True, any(ord(c) in _WIDTH for c in rare)


def _is_extend(char: str) -> bool:
    """A character of `_extend_class` (asked per character: building the class walks all of Unicode)."""
    cat = unicodedata.category(char)
    return cat in ("Mn", "Mc", "Me") or (cat == "Cf" and char != "\u200b")


_LETTER = r"[^\W\d_]"


@cache
def _fast_token_re() -> re.Pattern[str]:
    """`_token_re` for text without CJK and combining/format characters: word runs joined by a mid character
    between two letters (MidLetter, MidNumLet) or two digits (MidNum, MidNumLet), in one findall."""
    mid_l = re.escape(_MID_LETTER + _MID_NUM_LET)
    mid_n = re.escape(_MID_NUM + _MID_NUM_LET)
    return re.compile(rf"\w+(?:(?:(?<={_LETTER})[{mid_l}](?={_LETTER})|(?<=\d)[{mid_n}](?=\d))\w+)*")


@cache
def _break_re() -> re.Pattern[str]:
    """In fast-path text: the characters the FTS `ascii` tokenizer would keep inside a token although they end
    one: mid characters that join nothing, and non-ASCII characters that are neither word nor mid characters.

    It starts with one character class, so the regex engine skips the (mostly ASCII word) text between them fast.
    """
    mid_ascii = re.escape("".join(c for c in MID_CHARS if c.isascii()))
    letter_pair = rf"(?<={_LETTER}.){_LETTER}"
    return re.compile(
        rf"[{mid_ascii}\x80-\U0010ffff](?:"
        rf"(?<=[{re.escape(_MID_LETTER)}])(?!{letter_pair})"
        rf"|(?<=[{re.escape(_MID_NUM)}])(?!(?<=\d.)\d)"
        rf"|(?<=[{re.escape(_MID_NUM_LET)}])(?!{letter_pair}|(?<=\d.)\d)"
        rf"|(?<=[^\w{re.escape(MID_CHARS)}]))", re.S)


@cache
def _long_run_re() -> re.Pattern[str]:
    """More than MAX_TOKEN_LENGTH non-space characters (a longer token needs them); used with `match`."""
    return re.compile(rf"\S{{{MAX_TOKEN_LENGTH + 1}}}")


def _fast_lower(text: str) -> str | None:
    """`text` folded and lower-cased when the fast path applies to it (no CJK, no combining marks), else None.

    Text whose non-ASCII characters all lower-case to themselves (`°`, `—`, `μ` ...: most patent text that is not
    plain ASCII) is lower-cased as UTF-8 bytes, which changes the ASCII letters only and is several times quicker
    than `str.lower` on a wide string (`str.lower` is context-free but for the capital sigma, which is left out).
    """
    if text.isascii():
        return text.lower()
    encoded = text.encode()
    rare = _rare_chars(encoded)
    fast, fold = _rare_check(rare)
    if not fast:
        return None
    if fold:
        return text.translate(_WIDTH).lower()
    if all(c.lower() == c for c in rare):
        return encoded.lower().decode()
    return text.lower()


def _has_long_run(text: str) -> bool:
    """True when `text` may hold a token longer than MAX_TOKEN_LENGTH: a run of more non-space characters.

    Such a run covers a whole aligned block of half its length, so blocks that each hold a space rule it out
    without a regex step per character; only text with a spaceless block is searched in full.
    """
    if len(text) <= MAX_TOKEN_LENGTH:
        return False
    half = (MAX_TOKEN_LENGTH + 1) // 2
    find = text.find
    for start in range(0, len(text) - half + 1, half):
        if find(" ", start, start + half) < 0:
            return _long_run_re().match(text) is not None or _long_space_run_re().search(text) is not None
    return False


@cache
def _long_space_run_re() -> re.Pattern[str]:
    """`_long_run_re` after a space: starting with a class, the engine skips from space to space fast."""
    return re.compile(rf"\s\S{{{MAX_TOKEN_LENGTH + 1}}}")


def analyze(text: str) -> list[str]:
    """Lower-cased word tokens of `text`; CJK runs as overlapping bigrams."""
    if not text:
        return []
    folded = _fast_lower(text)
    if folded is not None:  # most text: one findall over the whole text
        tokens = _fast_token_re().findall(folded)
        if not _has_long_run(folded) or max(map(len, tokens), default=0) <= MAX_TOKEN_LENGTH:
            return tokens
    return [tok for tok, _, _ in analyze_spans(text)]


def index_text(text: str) -> str:
    """`text` as the embedded index stores it for full-text search: split on every ASCII character other than
    letters, digits and `_.:,;'` (FTS5's `ascii` tokenizer, index.embedded.schema), it gives exactly
    `analyze(text)`. Mostly the lower-cased text with a few punctuation marks blanked, so no token is cut out
    in Python; text needing the exact rules (CJK, combining marks, over-long tokens) gives the joined tokens."""
    if not text:
        return ""
    folded = _fast_lower(text)
    if folded is not None and not _has_long_run(folded):
        return _break_re().sub(" ", folded)
    return " ".join(analyze(text))


def _analyze_exact(text: str) -> list[str]:
    """The reference implementation `analyze` must equal (kept for tests)."""
    return [tok for tok, _, _ in analyze_spans(text)]


@cache
def _cjk_re() -> re.Pattern[str]:
    return re.compile(f"[{_CJK_RANGES}]")


def is_cjk(text: str) -> bool:
    """True when `text` contains a CJK character (prefix queries on CJK are bigram phrases)."""
    return _cjk_re().search(text) is not None
