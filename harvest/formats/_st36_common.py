"""Shared pieces of the WIPO ST.36-style formats (EPO publication server, DOCDB/OPS, CNIPA, JPO).

Pure functions over lxml elements whose namespaces were stripped with `strip_namespaces`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from lxml import etree

from index.classification import Classification
from index.model import Citation, Claim, PublicationNumber, parse_date

_CJK = r"\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f"
_CJK_GAP = re.compile(rf"(?<=[{_CJK}])\s+|\s+(?=[{_CJK}])")
# Office language codes seen in these formats that are not ISO 639-1.
_LANG_ALIASES = {"cn": "zh", "chi": "zh", "zho": "zh", "jp": "ja", "jpn": "ja", "eng": "en", "ger": "de", "deu": "de",
                 "fre": "fr", "fra": "fr", "rus": "ru"}
# Language of publication for offices that publish in one language (used when a text is marked "ol"/unmarked).
COUNTRY_LANG = {"CN": "zh", "JP": "ja", "RU": "ru", "SU": "ru", "KR": "ko", "DE": "de", "AT": "de", "FR": "fr",
                "ES": "es", "IT": "it", "PT": "pt", "NL": "nl", "GB": "en", "US": "en", "AU": "en", "TW": "zh"}


def strip_namespaces(root: etree._Element) -> etree._Element:
    """Rename every element to its local name (in place) so one set of paths serves prefixed and plain files."""
    for el in root.iter():
        if isinstance(el.tag, str) and "}" in el.tag:
            el.tag = etree.QName(el).localname
    etree.cleanup_namespaces(root)
    return root


def clean(text: str) -> str:
    """Collapse whitespace and drop the line-break spaces that CJK full text carries between characters."""
    text = re.sub(r"\s+", " ", text or "").strip()
    return _CJK_GAP.sub("", text) if re.search(rf"[{_CJK}]", text) else text


# Inline markup: part of the word or formula around it (`CF<sub>2</sub>=CFR<sub>f</sub>`), never a word break.
INLINE = frozenset({"b", "i", "u", "o", "sub", "sup", "sub2", "sup2", "smallcaps", "B", "I", "U", "Sub", "Sup",
                    "claim-ref", "figref", "crossref"})


def flat_text(el: etree._Element, sep: str = " ") -> str:
    """The text under `el` as written, with `sep` around every element that is not inline markup (`p`, `br`,
    `claim-text` ... separate words; `sub`, `sup`, `i` ... do not); whitespace is left as it is."""
    if not len(el):
        return el.text or ""
    parts: list[str] = []
    _flatten(el, parts, sep)
    return "".join(parts)


def _flatten(el: etree._Element, parts: list[str], sep: str) -> None:
    if el.text:
        parts.append(el.text)
    for child in el:
        if isinstance(child.tag, str):
            block = child.tag not in INLINE
            if block:
                parts.append(sep)
            _flatten(child, parts, sep)
            if block:
                parts.append(sep)
        if child.tail:
            parts.append(child.tail)


def text(el: etree._Element | None) -> str:
    """Text of an element, whitespace collapsed, inline markup joined to the word around it."""
    return clean(flat_text(el)) if el is not None else ""


def first_text(el: etree._Element | None, *paths: str) -> str:
    """Text of the first non-empty element among `paths` (relative to `el`)."""
    if el is None:
        return ""
    for path in paths:
        for found in el.iterfind(path):
            value = text(found)
            if value:
                return value
    return ""


def lang_code(value: str | None, country: str | None = None) -> str | None:
    """ISO 639-1 lower-case code for an office's language mark; `ol` (original language) resolves via country."""
    code = (value or "").strip().lower()
    code = _LANG_ALIASES.get(code, code)
    if re.fullmatch(r"[a-z]{2}", code) and code != "ol":
        return code
    return COUNTRY_LANG.get((country or "").upper())


def guess_lang(value: str, country: str | None = None) -> str | None:
    """Language of an unmarked text from its script, else from the publishing country."""
    if re.search(r"[\u0400-\u04ff]", value):
        return "ru"
    if re.search(r"[\u3040-\u30ff]", value):
        return "ja"
    if re.search(r"[\u4e00-\u9fff]", value):
        return "ja" if (country or "").upper() == "JP" else "zh"
    return COUNTRY_LANG.get((country or "").upper())


def paragraphs(section: etree._Element | None, tags: Iterable[str] = ("p", "heading", "Paragraphs")) -> str:
    """Text of a description/abstract as one line per paragraph (outermost paragraph elements only)."""
    if section is None:
        return ""
    wanted = set(tags)
    out: list[str] = []
    for el in section.iter():
        if el is section or not isinstance(el.tag, str) or el.tag not in wanted:
            continue
        parent = el.getparent()
        nested = False
        while parent is not None and parent is not section:
            if parent.tag in wanted:
                nested = True
                break
            parent = parent.getparent()
        if not nested:
            value = text(el)
            if value:
                out.append(value)
    return "\n".join(out) if out else text(section)


def document_id(el: etree._Element | None) -> dict[str, str]:
    """country / doc-number / kind / date / name of an ST.36 `document-id` (or CNIPA `DocumentID`)."""
    if el is None:
        return {}
    return {
        "country": first_text(el, "country", "WIPOST3Code").upper(),
        "number": first_text(el, "doc-number", "DocNumber"),
        "kind": first_text(el, "kind", "Kind"),
        "date": first_text(el, "date", "Date"),
        "name": first_text(el, "name"),
    }


def application_number(country: str, number: str) -> str | None:
    """`EP98948476` from ("EP", "98948476.1"): country prefix, no check digit, no separators."""
    number = re.sub(r"\.[\dX]$", "", (number or "").strip().upper())
    number = re.sub(r"[\s/,\-]", "", number)
    if not number:
        return None
    if country and not number.startswith(country):
        number = country.upper() + number
    return number


def pn_from_parts(country: str, number: str, kind: str = "") -> PublicationNumber:
    number = re.sub(r"[\s,/\-.]", "", number or "").upper()
    return PublicationNumber(country.upper(), number, (kind or "").strip().upper())


# --- classifications -----------------------------------------------------------------------------------

_SYMBOL = re.compile(r"^\s*(?:\d{1,2}\s*)?([A-HY])\s*(\d{2})\s*([A-Z])\s*(\d{1,4})\s*/\s*(\d{1,6})")
_DOCDB_TAIL = re.compile(r"^\s*(\d{8})([ACS ])([FL ])([INA ])")
_OPS_TAIL = re.compile(r"^\s*([ACS])([FL ])([INA])\s*$")
_PAREN_VERSION = re.compile(r"^\s*\((\d{4})\.(\d{2})\)")


def parse_class_text(value: str, scheme: str = "IPC", first: bool | None = None) -> Classification | None:
    """Parse the fixed DOCDB/OPS/CNIPA classification text (`A61K   9/28   20060101AFI20051220RMEP`,
    `E21B  47/  0228   A I`, `A24B 15/18 (2006.01)`, old `7A 01B 45/00 A`) into a Classification."""
    raw = (value or "").replace("\u3000", " ")
    raw = unicodedata.normalize("NFKC", raw)
    m = _SYMBOL.match(raw)
    if not m:
        stripped = raw.strip()
        return Classification.parse(stripped, scheme) if stripped else None
    sec, cls2, sub, grp, sg = m.groups()
    rest = raw[m.end():]
    version = position = val = None
    tail = _DOCDB_TAIL.match(rest)
    if tail:
        version = tail.group(1)
        position, val = tail.group(3).strip(), tail.group(4).strip()
    elif (tail := _OPS_TAIL.match(rest)) is not None:
        position, val = tail.group(2).strip(), tail.group(3).strip()
    elif (paren := _PAREN_VERSION.match(rest)) is not None:
        version = f"{paren.group(1)}{paren.group(2)}01"
    is_first = first if first is not None else position == "F"
    return Classification.from_parts(scheme, sec, cls2, sub, grp, sg, version=version, value=val or None,
                                     first=is_first)


def parse_patent_classification(el: etree._Element) -> Classification | None:
    """An ST.36 `patent-classification` (symbol text, or section/class/subclass/main-group/subgroup)."""
    scheme_el = el.find("classification-scheme")
    scheme_attr = (scheme_el.get("scheme") if scheme_el is not None else "") or ""
    scheme = "CPC" if scheme_attr.upper().startswith("CPC") else (scheme_attr.upper() or "CPC")
    value = first_text(el, "classification-value") or None
    first = first_text(el, "symbol-position") == "F"
    version = (first_text(scheme_el, "date") if scheme_el is not None else "") or None
    symbol = first_text(el, "classification-symbol")
    if symbol:
        m = _SYMBOL.match(symbol)
        if m and scheme in ("CPC", "IPC"):
            return Classification.from_parts(scheme, *m.groups(), version=version, value=value, first=first)
        return Classification.parse(symbol, scheme, version=version, value=value, first=first)
    parts = [first_text(el, tag) for tag in ("section", "class", "subclass", "main-group", "subgroup")]
    if all(parts):
        return Classification.from_parts(scheme, *parts, version=version, value=value, first=first)
    return None


def dedupe_classes(items: Iterable[Classification | None]) -> list[Classification]:
    seen: set[tuple[str, str]] = set()
    out: list[Classification] = []
    for c in items:
        if c is None or (c.scheme, c.symbol) in seen:
            continue
        seen.add((c.scheme, c.symbol))
        out.append(c)
    return out


# --- citations -----------------------------------------------------------------------------------------

_CITED_TEXT = re.compile(r"^\s*([A-Z]{2})\s*-\s*([A-Z]\d?)\s*-\s*(.+?)\s*$")


def citation_number(doc: dict[str, str]) -> str | None:
    if not doc.get("number"):
        return None
    number = doc["number"]
    country = doc.get("country") or ""
    if not country:
        m = re.match(r"^([A-Z]{2})(\d.*)$", number.replace(" ", ""))
        if not m:
            return number
        country, number = m.groups()
    return pn_from_parts(country, number, doc.get("kind", "")).docdb


def citation_from_text(value: str, category: str | None = None) -> Citation:
    """EP B561 text such as `EP-A- 0 361 708` or `WO-A1-00/50428` -> DOCDB number `EP-0361708-A`."""
    m = _CITED_TEXT.match(value)
    if m:
        country, kind, number = m.groups()
        if re.fullmatch(r"[\d\s/.,A-Z]+", number):
            return Citation("patent", number=pn_from_parts(country, number, kind).docdb, text=value, category=category)
    return Citation("patent", text=value, category=category)


def citation_from_element(el: etree._Element, category: str | None = None) -> Citation | None:
    """A `patcit` or `nplcit` element (preferring its docdb document-id) as a Citation."""
    if el.tag == "nplcit":
        value = first_text(el, "text") or text(el)
        return Citation("npl", text=value, category=category) if value else None
    ids = el.findall("document-id")
    preferred = [d for d in ids if d.get("document-id-type") in ("docdb", None)] or ids
    doc = document_id(preferred[0]) if preferred else {}
    number = citation_number(doc) if doc else None
    if number is None and el.get("dnum"):
        number = citation_number({"number": el.get("dnum", "")})
    if number is None:
        value = first_text(el, "text")
        return citation_from_text(value, category) if value else None
    return Citation("patent", number=number, text=doc.get("name") or None, category=category,
                    date=parse_date(doc.get("date")))


def dedupe_citations(items: Iterable[Citation | None]) -> list[Citation]:
    seen: set[tuple[str, str]] = set()
    out: list[Citation] = []
    for c in items:
        if c is None:
            continue
        key = (c.kind, c.number or c.text or "")
        if key in seen:
            continue
        seen.add(key)
        out.append(c)
    return out


# --- claims --------------------------------------------------------------------------------------------

_CLAIM_WORD = (r"(?:claims?|anspr(?:u|ü|ue)ch(?:e|s|en)?|revendications?|reivindicaci(?:ó|o)n(?:es)?|"
               r"rivendicazion[ei]|权利要求|權利要求|請求項|청구항)")
_NUM_LIST = (r"(\d+(?:\s*(?:,|、|;|or|and|und|oder|bis|et|ou|à|a|to|through|until|-|–|—|~|〜|至|或|及|和|"
             r"又は|または|若しくは|から|乃至|ないし)\s*\d+)*)")
_REF = re.compile(_CLAIM_WORD + r"\s*(?:no\.?|nos\.?|n°)?\s*" + _NUM_LIST, re.I)
_ROMAN_ONE = re.compile(r"\bclaims?\s+I\b")  # OCR for "claim 1" seen in EP texts
_ALL_PRECEDING = re.compile(
    r"(?:preceding|previous|foregoing|above)\s+claims|(?:vorhergehenden|vorangehenden|vorstehenden)\s+Anspr(?:ü|ue)che|"
    r"revendications\s+pr(?:é|e)c(?:é|e)dentes|reivindicaciones\s+anteriores", re.I)
_RANGE_SEP = re.compile(r"^(?:bis|à|a|to|through|until|-|–|—|~|〜|至|から|乃至|ないし)$", re.I)


def claim_refs(value: str, own: int) -> list[int]:
    """Claim numbers a claim text refers to ("according to claim 1", "根据权利要求1", "請求項1〜3"), < own."""
    norm = unicodedata.normalize("NFKC", value)
    refs: set[int] = set()
    for m in _REF.finditer(norm):
        tokens = re.findall(r"\d+|[^\d\s]+", m.group(1))
        prev: int | None = None
        pending_range = False
        for tok in tokens:
            if tok.isdigit():
                n = int(tok)
                if pending_range and prev is not None and prev < n <= prev + 200:
                    refs.update(range(prev, n + 1))
                else:
                    refs.add(n)
                prev, pending_range = n, False
            else:
                pending_range = bool(_RANGE_SEP.match(tok))
    if _ROMAN_ONE.search(norm):
        refs.add(1)
    if _ALL_PRECEDING.search(norm):
        refs.update(range(1, own))
    return sorted(r for r in refs if 0 < r < own)


_LEADING_NUM = re.compile(r"^\s*(\d+)\s*[.．、:：)]\s*(?!\d)")


def strip_claim_number(value: str, num: int | None = None) -> str:
    """Drop a printed `1.` / `1、` prefix from a claim text (exactly `num` when known: `1.2,4-diamino...`)."""
    if num is not None:
        return re.sub(rf"^\s*0*{num}\s*[.．、:：)]\s*", "", value, count=1)
    return _LEADING_NUM.sub("", value, count=1)


def make_claims(items: Iterable[tuple[int, str]]) -> list[Claim]:
    return [Claim(num=num, text=body, depends_on=claim_refs(body, num)) for num, body in items if body]


def claims_from_markup(claims_el: etree._Element | None, claim_tag: str = "claim") -> list[Claim]:
    """Claims of an ST.36 `<claims>` block: number from `num`, dependencies from `claim-ref` or the text."""
    if claims_el is None:
        return []
    claim_els = claims_el.findall(claim_tag)
    ids = {c.get("id"): i for i, c in enumerate(claim_els, 1) if c.get("id")}
    nums: dict[str, int] = {}
    out: list[Claim] = []
    for i, c in enumerate(claim_els, 1):
        num = _int(c.get("num")) or i
        if c.get("id"):
            nums[c.get("id", "")] = num
        body = strip_claim_number(text(c), num)
        if not body:
            continue
        marked = {nums.get(r.get("idref", "")) or ids.get(r.get("idref", "")) for r in c.iter("claim-ref")}
        marked_refs = sorted(r for r in marked if r and r < num)
        out.append(Claim(num=num, text=body, depends_on=marked_refs or claim_refs(body, num)))
    return out


_NUMBERED = re.compile(r"(?:^|\n)\s*(\d{1,3})\s*\.\s+(?=\S)")


def split_numbered_claims(value: str) -> list[tuple[int, str]]:
    """Split a text-only claims block (`1. A method ... 2. The method of claim 1 ...`) into numbered claims."""
    matches = [m for m in _NUMBERED.finditer(value)]
    out: list[tuple[int, str]] = []
    expected = 1
    starts: list[tuple[int, int, int]] = []
    for m in matches:
        if int(m.group(1)) == expected:
            starts.append((expected, m.start(), m.end()))
            expected += 1
    for i, (num, _, body_start) in enumerate(starts):
        end = starts[i + 1][1] if i + 1 < len(starts) else len(value)
        out.append((num, clean(value[body_start:end])))
    return out


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None
