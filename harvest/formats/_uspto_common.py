"""Helpers the USPTO parsers (ICE, pap, ST.32) share: text cleanup, USPC/Locarno/IPC strings, claims, names."""

from __future__ import annotations

import re
from collections.abc import Collection, Container, Iterable, Iterator
from datetime import date

from lxml import etree

from harvest.xmlsafe import collapse_ws, text_of
from index.classification import Classification
from index.model import Citation, Claim, Party, parse_date

_COUNTRY = re.compile(r"[A-Z]{2}")
_PLAIN_PATH = re.compile(r"[A-Za-z_][\w.-]*(?:/[A-Za-z_][\w.-]*)*")
_DIGITS = re.compile(r"(\d+)")
_STEPS: dict[str, tuple[str, ...]] = {}  # path -> its tag steps; () for paths `first` leaves to ElementPath
_CLAIM_ID = re.compile(r"CLM-0*(\d+)(?:\s*-\s*(?:CLM-)?0*(\d+))?", re.I)
_LEADING_NUM = re.compile(r"^\s*(\d+)\s*(?:\.?\s*-\s*\d+\s*)?\.\s*")
_LETTER_CLASS_ZEROS = re.compile(r"(?<=^[A-Z])0+(?=\d)")
_CANCELED = re.compile(r"\(?\s*(canceled|cancelled|deleted|withdrawn)\s*\)?\s*\.?$", re.I)  # after the number


def child_text(el: etree._Element | None, path: str) -> str:
    """Collapsed text of the first element at `path` under `el` ('' when missing)."""
    if el is None:
        return ""
    return text_of(first(el, path))


def first(el: etree._Element, path: str) -> etree._Element | None:
    """`el.find(path)`, with a fast path for plain `tag` and `tag/tag` paths (the common case)."""
    steps = _STEPS.get(path)
    if steps is None:
        steps = _STEPS[path] = tuple(path.split("/")) if _PLAIN_PATH.fullmatch(path) else ()
    if not steps:
        return el.find(path)
    found: etree._Element | None = el
    for step in steps:
        found = next(found.iterchildren(step), None)  # type: ignore[union-attr]
        if found is None:
            return el.find(path) if len(steps) > 1 else None  # a later sibling of the first may hold the rest
    return found


def leaf_text(el: etree._Element | None) -> str:
    """`text_of(el)`, quicker for the common case of a short leaf (`<country>US</country>`)."""
    if el is None:
        return ""
    if len(el):
        return text_of(el)
    text = el.text
    if not text:
        return ""
    return text.strip() if text.isprintable() and "  " not in text else collapse_ws(text)


def children_by_tag(el: etree._Element) -> dict[str, etree._Element]:
    """The first child element of each tag, in one pass (for reading several fields of a small record)."""
    out: dict[str, etree._Element] = {}
    for child in el.iterchildren(etree.Element):
        out.setdefault(child.tag, child)
    return out


def rich_text(el: etree._Element | None, skip: Iterable[str] = (), blocks: Iterable[str] = ()) -> str:
    """Text of `el` with whitespace collapsed, dropping `skip` subtrees (tables, maths: their tails stay) and
    putting a space around `blocks` (nested claim steps) so words of adjacent blocks do not run together.

    lxml serializes the text when `el` holds nothing to skip and every block already has whitespace around it
    (`_spaced`: the common, pretty-printed case); otherwise the tree is walked (skipped subtrees unvisited).
    """
    if el is None:
        return ""
    skip, blocks = tuple(skip), tuple(blocks)
    if (not skip or next(el.iterdescendants(*skip), None) is None) and (not blocks or _spaced(el, blocks)):
        return collapse_ws(etree.tostring(el, method="text", encoding=str, with_tail=False))
    skip_set, block_set = frozenset(skip), frozenset(blocks)
    parts: list[str] = []

    def walk(node: etree._Element) -> None:
        if node.text:
            parts.append(node.text)
        for child in node:
            tag = child.tag if isinstance(child.tag, str) else None
            if tag is not None and tag not in skip_set:
                if tag in block_set:
                    parts.append(" ")
                walk(child)
                if tag in block_set:
                    parts.append(" ")
            elif tag is not None:
                parts.append(" ")
            if child.tail:
                parts.append(child.tail)

    walk(el)
    return collapse_ws("".join(parts))


def _spaced(el: etree._Element, blocks: tuple[str, ...]) -> bool:
    """True when the spaces `rich_text` puts around each `blocks` element under `el` change nothing once whitespace
    is collapsed: each side of each block already touches whitespace, the start or end of the text, or the space of
    an enclosing block (itself checked in turn). Conservative: an undecided side answers False (the tree is walked).
    """
    for block in el.iterdescendants(*blocks):
        text = block.text
        if not (text and text[0].isspace()):  # before the block: the text before it must end with whitespace
            prev = block.getprevious()
            if prev is not None:
                before = prev.tail
                if not (before and before[-1].isspace()):
                    return False
            else:
                parent = block.getparent()
                before = parent.text
                if before:
                    if not before[-1].isspace():
                        return False
                elif parent is not el and parent.tag not in blocks:
                    return False
        tail = block.tail
        if not (tail and tail[0].isspace()):  # after the block: its own text must end with whitespace ...
            inner = block[-1].tail if len(block) else text
            if not (inner and inner[-1].isspace()):
                if tail or block.getnext() is not None:  # ... or nothing follows it in an enclosing block
                    return False
                parent = block.getparent()
                if parent is not el and parent.tag not in blocks:
                    return False
    return True


def top_level(section: etree._Element, tags: Container[str], skip: Container[str]) -> Iterator[etree._Element]:
    """Elements tagged `tags` under `section`, in document order, leaving out those inside another such element
    or inside a `skip` subtree."""
    for child in section.iterchildren(etree.Element):
        if child.tag in tags:
            yield child
        elif child.tag not in skip:
            yield from top_level(child, tags, skip)


def paragraphs(section: etree._Element | None, tags: Collection[str], skip: Collection[str],
               blocks: Iterable[str] = ()) -> str:
    """The `rich_text` of each top-level paragraph (`tags`) of `section`, one per line; `skip` subtrees left out."""
    if section is None:
        return ""
    tag_set, skip_set = frozenset(tags), frozenset(skip)
    special = (*skip, *blocks)
    marked = {_outermost(el, section, tag_set) for el in section.iterdescendants(*special)} if special else set()
    return join_paragraphs(
        rich_text(el, skip, blocks) if el in marked  # holds something to drop or space out
        else collapse_ws(etree.tostring(el, method="text", encoding=str, with_tail=False))
        for el in top_level(section, tag_set, skip_set)
    )


def _outermost(el: etree._Element, section: etree._Element, tags: Container[str]) -> etree._Element | None:
    """The outermost ancestor of `el` below `section` tagged `tags` (None if there is none)."""
    found = None
    node = el.getparent()
    while node is not None and node is not section:
        if node.tag in tags:
            found = node
        node = node.getparent()
    return found


def join_paragraphs(texts: Iterable[str]) -> str:
    return "\n".join(t for t in texts if t)


def quick_date(text: str | None) -> date | None:
    """`parse_date`, answering the common `20230509` shape without regular expressions."""
    if text and len(text) == 8 and text.isascii() and text.isdigit():
        try:
            return date(int(text[:4]), int(text[4:6]), int(text[6:]))
        except ValueError:
            return None
    return parse_date(text)


def loose_date(text: str | None) -> date | None:
    """`parse_date`, also accepting the `19670900` / `19670000` partial dates citations carry (as the 1st)."""
    if text and len(text) == 8 and text.isascii() and text.isdigit():  # the common shape, without regexes
        year, month, day = int(text[:4]), int(text[4:6]), int(text[6:])
        if day:
            return quick_date(text)
        if not year:
            return None
        return date(year, month, 1) if 1 <= month <= 12 else date(year, 1, 1)
    d = parse_date(text)
    if d is None and text:
        digits = re.sub(r"\D", "", text)
        if len(digits) == 8 and digits.endswith("00"):
            d = parse_date(digits[:6] + "01") or parse_date(digits[:4] + "0101")
    return d


_CITATION_DATES: dict[str | None, date | None] = {}


def citation_date(text: str | None) -> date | None:
    """`loose_date`, remembered: citations of a weekly file share a few thousand dates (`20150700` ...)."""
    try:
        return _CITATION_DATES[text]
    except KeyError:
        value = _CITATION_DATES[text] = loose_date(text)
        if len(_CITATION_DATES) > 65536:  # bounded: an odd file with countless distinct dates starts afresh
            _CITATION_DATES.clear()
        return value


def docdb(country: str, number: str, kind: str = "") -> str:
    """`US-3343988-A` from the parts a citation or reference gives (spaces and commas dropped): the
    `PublicationNumber.docdb` of those parts, spelt out here (a citation needs only the string)."""
    number = number or ""
    if not (number.isascii() and number.isalnum()):
        number = re.sub(r"[\s,]", "", number)
    country = (country or "US").strip().upper()
    kind = (kind or "").strip().upper()
    return f"{country}-{number}-{kind}" if kind else f"{country}-{number}"


def application_number(country: str, number: str) -> str | None:
    """`US17248024`: country prefix and no separators, the form the other office parsers store."""
    number = re.sub(r"[\s/,\-]", "", number or "").upper()
    if not number:
        return None
    country = (country or "US").strip().upper()
    return number if number.startswith(country) else country + number


def patent_citation(
    country: str, number: str, kind: str, category: str | None, when: str | None
) -> Citation | None:
    if not number.strip():
        return None
    return Citation("patent", docdb(country, number, kind), None, category or None, citation_date(when))


def npl_citation(text: str, category: str | None) -> Citation | None:
    return Citation(kind="npl", text=text, category=category or None) if text else None


def person_name(first: str, last: str, org: str = "") -> str:
    """`Steven J. Visco` for people, the organization name otherwise."""
    if org:
        return org
    return " ".join(p for p in (first, last) if p)


def party(name: str, country: str | None, role: str) -> Party | None:
    name = collapse_ws(name or "")
    if not name:
        return None
    country = (country or "").strip().upper() or None
    if country and not (len(country) == 2 and _COUNTRY.fullmatch(country)):
        country = None
    return Party(name, country, role)


def unique_parties(parties: Iterable[Party | None]) -> list[Party]:
    out: list[Party] = []
    seen: set[tuple[str, str]] = set()
    for p in parties:
        if p is None:
            continue
        key = (p.normalized, p.role)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


# --- classifications -------------------------------------------------------------------------------------

_FIXED_WIDTH_IPC = re.compile(r"^([A-HY]\d\d[A-Z])([ \d]{2}\d)(\d{2,6})$")


def ipc_text(text: str, version: str | None = None, first: bool = False) -> Classification | None:
    """IPC from a string: `A61K 9/20`, `7A61K 9/20` (edition prefix), `A61B005/00`, and the fixed-width form of
    ST.32 and ICE v4.0 (`A47L  514`, `H01L 21302`: subclass, main group right-aligned in 3, then the subgroup)."""
    raw = (text or "").strip()
    if not raw:
        return None
    m = re.match(r"^(\d{1,2})\s*([A-HY]\d\d[A-Z].*)$", raw)
    if m:
        version = version or m.group(1)
        raw = m.group(2)
    if fixed := _FIXED_WIDTH_IPC.match(raw):
        raw = f"{fixed.group(1)}{int(fixed.group(2))}/{fixed.group(3)}"
    return Classification.parse(raw, "IPC", version=version or None, first=first)


def uspc(text: str, first: bool = False) -> Classification | None:
    """A US class as USPTO writes it (`705 26`, `2611121`, `D 1101`, `257E21006`, `600300000`) -> `705/26`,
    `261/112.1`, `D1/101`, `257/E21.006`, `600/300`."""
    raw = _fixed_field(text)
    if not raw.strip() or raw.strip().lower() == "none":
        return None
    cls = raw[:3].replace(" ", "").lstrip("0") or "0"
    cls = _LETTER_CLASS_ZEROS.sub("", cls)  # design class `D07` is `D7`: one class, one spelling
    rest = raw[3:]
    sub = _uspc_subclass(rest)
    symbol = f"{cls}/{sub}" if sub else cls
    return Classification(scheme="USPC", symbol=symbol, first=first)


def fixed_text(el: etree._Element | None) -> str:
    """The value of a fixed-width field (`707  7`), inner spacing kept, without the whitespace-only text nodes a
    pretty-printed file puts around its `<PDAT>` leaf."""
    if el is None:
        return ""
    return "".join(t for t in el.itertext() if t.strip())


def _fixed_field(text: str | None) -> str:
    """A fixed-width value (`  81  337`: leading spaces matter) without line breaks; a value broken over lines
    lost its alignment to indentation, so its class is right-aligned again."""
    raw = text or ""
    if "\n" not in raw and "\r" not in raw:
        return raw.rstrip()
    value = " ".join(line.strip() for line in re.split(r"[\r\n]+", raw) if line.strip())
    m = re.match(r"^(\d{1,2}) ", value)
    return " " * (3 - len(m.group(1))) + value if m else value


def uspc_parts(klass: str, subclass: str, first: bool = False) -> Classification | None:
    """pap style: `<class>002</class><subclass>455000</subclass>` -> `2/455`."""
    klass = (klass or "").strip()
    if not klass:
        return None
    return uspc(klass.rjust(3)[:3] + (subclass or "").strip(), first=first)


def _uspc_subclass(rest: str) -> str:
    rest = rest.rstrip()
    if not rest.strip():
        return ""
    compact = rest.replace(" ", "")
    m = re.match(r"^(DIG|[A-Z]\d\d)(.*)$", compact)
    if m and m.group(1) == "DIG":
        return "DIG" + m.group(2).lstrip("0")
    if m:  # E21006 -> E21.006 (the "E-subclasses" USPC used for semiconductor art collections)
        return m.group(1) + ("." + m.group(2) if m.group(2) else "")
    main, tail = rest[:3].strip(), rest[3:].strip()
    m2 = re.match(r"^(\d*)\s*([A-Z]*)$", tail.replace(" ", ""))
    if not main.isdigit() or m2 is None:
        return compact
    decimals, letters = m2.group(1).rstrip("0"), m2.group(2)
    sub = main.lstrip("0") or "0"
    if decimals:
        sub += "." + decimals
    return sub + letters


def locarno(text: str, version: str | None = None, first: bool = True) -> Classification | None:
    """Locarno design class `0101` -> `01-01`."""
    raw = re.sub(r"\s+", "", text or "")
    if not raw:
        return None
    m = re.fullmatch(r"(\d{2})-?(\d{2})", raw)
    symbol = f"{m.group(1)}-{m.group(2)}" if m else raw
    return Classification(scheme="LOCARNO", symbol=symbol, version=version or None, first=first)


def compact(items: Iterable[Classification | None]) -> list[Classification]:
    return [c for c in items if c is not None]


# --- claims ----------------------------------------------------------------------------------------------

def make_claim(num: int, text: str, refs: Iterable[str]) -> Claim | None:
    """A claim from its text and the ids it refers to; None for a `(canceled)` placeholder."""
    text = clean_claim(text)
    lead = _LEADING_NUM.match(text)  # `1. `, `1-18. `
    if _CANCELED.match(text, lead.end() if lead else 0):  # `1-18. (canceled)`: dropped in prosecution, not a claim
        return None
    deps = [d for d in referenced_claims(refs) if d != num]  # a claim citing itself is a source slip
    if lead and int(lead.group(1)) == num:  # the leading `1. ` repeats the claim's own number
        text = text[lead.end():]
    return Claim(num, text, deps)


def claim_num(ident: str | None, fallback: int) -> int:
    m = _DIGITS.search(ident or "")
    return int(m.group(1)) if m else fallback


def referenced_claims(refs: Iterable[str]) -> list[int]:
    """Claim numbers from `CLM-00001` style ids (and `CLM-00001-00003` ranges), in order, without repeats."""
    out: list[int] = []
    for ref in refs:
        for m in _CLAIM_ID.finditer(ref or ""):
            lo = int(m.group(1))
            hi = int(m.group(2)) if m.group(2) else lo
            span = range(lo, hi + 1) if 0 <= hi - lo < 500 else (lo, hi)  # a garbled range: keep its ends only
            out.extend(n for n in span if n not in out)
    return out


def clean_claim(text: str) -> str:
    """Close the gaps block joins leave before punctuation (`claim 2 , wherein` -> `claim 2, wherein`)."""
    if text.isprintable() and " ," not in text and " ;" not in text and " :" not in text and " ." not in text:
        return text  # printable text has no whitespace but the space (see `collapse_ws`): nothing to close
    return re.sub(r"\s+([,;:.](?:\s|$))", r"\1", text)
