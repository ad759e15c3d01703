"""Applicant names as people write them, reduced to one key per company (pure).

"Huawei Technologies Co., Ltd.", "HUAWEI TECHNOLOGIES CO LTD", "Ｈｕａｗｅｉ Technologies Co.,Ltd" and "华为技术有限公司"'s
English twin all differ only in case, width, punctuation and legal form. `applicant_key` folds width (NFKC), case and
the accents of Latin letters, drops punctuation, and strips legal-form words wherever they stand (Co., Ltd., Inc., Corp., GmbH, AG, S.A.,
S.p.A., B.V., 有限公司, 股份有限公司, 有限责任公司, 株式会社, 주식회사 ...) so a watched applicant matches every spelling of
the same company. Chinese and English names of one company are different keys (no transliteration), but the
documents often say which spellings belong together: `ApplicantAliases` learns them from a document that lists one
applicant in two scripts (华为技术有限公司 beside Huawei Technologies Co., Ltd.) and from the members of one patent
family that name their applicants in different scripts (a CN publication and its EP or WO twin), and
`matching_names(..., aliases=...)` then matches every spelling of the company.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence

from index.model import PatentDocument

# Latin-script legal forms as word sequences once punctuation is gone ("S.A." -> "s a"), longest first.
_LATIN_FORM_SEQUENCES = sorted({tuple(f.split()) for f in (
    "incorporated", "inc", "corporation", "corp", "company", "co", "limited", "ltd", "llc", "l l c", "plc",
    "gmbh", "g m b h", "mbh", "ag", "a g", "kgaa", "kg", "gmbh co kg", "co kg", "sa", "s a", "sas", "s a s", "spa", "s p a", "srl",
    "s r l", "bv", "b v", "nv", "n v", "oy", "oyj", "ab", "as", "a s", "se", "llp", "lp", "pte", "pty", "sarl",
    "s a r l", "sl", "s l", "kk", "k k", "kabushiki kaisha", "gk", "yk", "ohg", "ug", "cie", "et cie",
    "инк", "корп", "лтд", "ооо", "оао", "зао", "пао", "ао",  # Russian: Inc., Corp., Ltd., OOO, OAO, ZAO, PAO, AO
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


def matching_names(watched: Iterable[str], names: Iterable[str], aliases: ApplicantAliases | None = None) -> list[str]:
    """The `names` (as written, in order, distinct) whose key is the key of a watched applicant (or, with
    `aliases`, of another spelling the documents gave for it)."""
    keys = {k for w in watched for k in (aliases.keys(w) if aliases else {applicant_key(w)})}
    return list(dict.fromkeys(n for n in names if applicant_key(n) in keys))


def script(name: str) -> str:
    """The writing system of a name: "han" (Chinese/Japanese), "kana", "hangul", "cyrillic", "latin" or "other"."""
    counts: dict[str, int] = defaultdict(int)
    for ch in unicodedata.normalize("NFKC", name):
        if not ch.isalpha():
            continue
        n = unicodedata.name(ch, "")
        kind = next((k for k, tag in _SCRIPTS if n.startswith(tag)), "other")
        counts[kind] += 1
    if counts.get("kana") and counts.get("han"):
        return "kana"  # Japanese names mix kanji and kana
    return max(counts, key=lambda k: counts[k]) if counts else "other"


_SCRIPTS = (("han", "CJK"), ("kana", "HIRAGANA"), ("kana", "KATAKANA"), ("hangul", "HANGUL"),
            ("cyrillic", "CYRILLIC"), ("latin", "LATIN"))


def companies(doc: PatentDocument) -> list[str]:
    """The names that own a publication: its assignees where it names any (US grants list inventors as
    applicants), else its applicants; distinct, in order."""
    parties = [p for p in doc.applicants if p.role == "assignee"] or [p for p in doc.applicants if p.role == "applicant"]
    return list(dict.fromkeys(p.name for p in parties))


class ApplicantAliases:
    """Applicant keys known to name one company in different scripts, learned from documents (union-find)."""

    def __init__(self) -> None:
        self._parent: dict[str, str] = {}
        self._members: dict[str, set[str]] = {}

    def _find(self, key: str) -> str:
        root = key
        while self._parent.get(root, root) != root:
            root = self._parent[root]
        return root

    def add(self, a: str, b: str) -> None:
        """Record that names `a` and `b` (as written) are one company."""
        ka, kb = self._find(applicant_key(a)), self._find(applicant_key(b))
        if not ka or not kb or ka == kb:
            return
        self._parent[kb] = ka
        self._members[ka] = self._members.get(ka, {ka}) | self._members.pop(kb, {kb})

    def keys(self, name: str) -> set[str]:
        """Every key known to name the company `name` names (its own key included)."""
        key = applicant_key(name)
        return set(self._members.get(self._find(key), {key}))

    def learn(self, docs: Iterable[PatentDocument]) -> None:
        """Pair the spellings documents give: within one document, and across the members of one family."""
        families: dict[str, list[list[str]]] = defaultdict(list)
        for d in docs:
            self._pair_scripts(list(dict.fromkeys(p.name for p in d.applicants if p.role in ("applicant", "assignee"))))
            if d.family_id and (names := companies(d)):
                families[d.family_id].append(names)
        for members in families.values():
            for i, a in enumerate(members):
                for b in members[i + 1:]:
                    self._pair_lists(a, b)

    def _pair_scripts(self, names: Sequence[str]) -> None:
        """One document naming its applicants in two scripts: the i-th of one script is the i-th of the other."""
        by_script: dict[str, list[str]] = defaultdict(list)
        for n in names:
            by_script[script(n)].append(n)
        groups = [v for k, v in by_script.items() if k != "other"]
        for i, a in enumerate(groups):
            for b in groups[i + 1:]:
                if len(a) == len(b):
                    for x, y in zip(a, b, strict=True):
                        self.add(x, y)

    def _pair_lists(self, a: Sequence[str], b: Sequence[str]) -> None:
        """Two publications of one family: applicants in order, when both list as many and in other scripts."""
        if len(a) != len(b):
            return
        for x, y in zip(a, b, strict=True):
            if script(x) != script(y):
                self.add(x, y)
