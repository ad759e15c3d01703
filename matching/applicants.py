"""Applicant names as people write them, reduced to one key per company (pure).

"Huawei Technologies Co., Ltd.", "HUAWEI TECHNOLOGIES CO LTD", "Ｈｕａｗｅｉ Technologies Co.,Ltd" and "华为技术有限公司"'s
English twin all differ only in case, width, punctuation and legal form. `applicant_key` folds width (NFKC), case and
the accents of Latin letters, drops punctuation, and strips legal-form words wherever they stand (Co., Ltd., Inc., Corp., GmbH, AG, S.A.,
S.p.A., B.V., 有限公司, 股份有限公司, 有限责任公司, 株式会社, 주식회사 ...) so a watched applicant matches every spelling of
the same company. Chinese and English names of one company are different keys (no transliteration); a profile lists
both when it wants both.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

# Latin-script legal forms as word sequences once punctuation is gone ("S.A." -> "s a"), longest first.
_LATIN_FORM_SEQUENCES = sorted({tuple(f.split()) for f in (
    "incorporated", "inc", "corporation", "corp", "company", "co", "limited", "ltd", "llc", "l l c", "plc",
    "gmbh", "g m b h", "mbh", "ag", "a g", "kgaa", "kg", "gmbh co kg", "co kg", "sa", "s a", "sas", "s a s", "spa", "s p a", "srl",
    "s r l", "bv", "b v", "nv", "n v", "oy", "oyj", "ab", "as", "a s", "se", "llp", "lp", "pte", "pty", "sarl",
    "s a r l", "sl", "s l", "kk", "k k", "kabushiki kaisha", "gk", "yk", "ohg", "ug", "cie", "et cie",
)}, key=len, reverse=True)
# CJK legal forms, longest first (股份有限公司 before 有限公司 before 公司).
_CJK_FORMS = sorted((
    "股份有限公司", "有限责任公司", "有限責任公司", "有限公司", "股份公司", "集团公司", "总公司", "分公司", "公司",
    "株式会社", "有限会社", "合同会社", "合資会社", "合名会社", "(株)", "㈱", "주식회사", "(주)", "㈜", "유한회사",
), key=len, reverse=True)
_PUNCT = re.compile(r"[^\w\s&]+")


def applicant_key(name: str) -> str:
    """One key per company: width and case folded, punctuation gone, legal-form words removed; the folded name
    itself when nothing else is left (a company called "Company")."""
    text = _fold_accents(unicodedata.normalize("NFKC", name or "").casefold())
    for form in _CJK_FORMS:
        text = text.replace(unicodedata.normalize("NFKC", form).casefold(), " ")
    words = _PUNCT.sub(" ", text).replace("&", " & ").split()
    key = " ".join(_strip_forms(words))
    if not key:
        key = " ".join(_PUNCT.sub(" ", unicodedata.normalize("NFKC", name or "").casefold()).split())
    return key


def _fold_accents(text: str) -> str:
    """Drop the accents of Latin letters (é -> e, ü -> u); kana voicing marks and Hangul stay as they are."""
    if text.isascii():
        return text
    out: list[str] = []
    for ch in unicodedata.normalize("NFD", text):
        if unicodedata.combining(ch) and out and out[-1].isascii():
            continue
        out.append(ch)
    return unicodedata.normalize("NFC", "".join(out))


def _strip_forms(words: list[str]) -> list[str]:
    """Remove legal-form word sequences anywhere after the first word (and a trailing '&' they leave)."""
    out: list[str] = []
    i = 0
    while i < len(words):
        for seq in _LATIN_FORM_SEQUENCES:
            n = len(seq)
            if i > 0 and tuple(words[i:i + n]) == seq:
                i += n
                break
        else:
            out.append(words[i])
            i += 1
    while out and out[-1] in ("&", "and", "und", "et"):
        out.pop()
    return out


def matching_names(watched: Iterable[str], names: Iterable[str]) -> list[str]:
    """The `names` (as written, in order, distinct) whose key is the key of a watched applicant."""
    keys = {applicant_key(w) for w in watched}
    return list(dict.fromkeys(n for n in names if applicant_key(n) in keys))
