"""The normalized patent document every room shares: what harvest produces and what the index stores."""

from __future__ import annotations

import dataclasses
import json
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Any

import orjson

from index.classification import Classification

_PN_RE = re.compile(r"^\s*([A-Za-z]{2})[\s\-]*([A-Za-z]{0,2}[\d\s,/\-]*\d)[\s\-]*([A-Za-z]\d?)?\s*$")


@dataclass(frozen=True, order=True)
class PublicationNumber:
    """A publication number in DOCDB form: country, number, kind (e.g. US, 11646472, B2)."""

    country: str
    number: str
    kind: str = ""

    @property
    def docdb(self) -> str:
        """`US-11646472-B2` (kind omitted when unknown)."""
        return f"{self.country}-{self.number}-{self.kind}" if self.kind else f"{self.country}-{self.number}"

    def __str__(self) -> str:
        return self.docdb

    @classmethod
    def parse(cls, text: str) -> PublicationNumber:
        """Parse `US-11646472-B2`, `US11646472B2`, `US 11,646,472 B2`, `EP1019261B1`, `USD0701016S1`."""
        m = _PN_RE.match(text or "")
        if not m:
            raise ValueError(f"not a publication number: {text!r}")
        country, number, kind = m.group(1).upper(), m.group(2), (m.group(3) or "").upper()
        number = re.sub(r"[\s,/\-]", "", number).upper()
        return cls(country, number, kind)

    def keys(self) -> list[str]:
        """Every compact spelling a searcher may type for this number (see `pn_query_key`)."""
        cc, num, kind = self.country, self.number, self.kind
        m = re.match(r"^([A-Z]*)0*(\d+)$", num)
        nums = {num}
        if m:
            nums.add(m.group(1) + m.group(2))  # leading zeros after a D/PP/RE/H prefix dropped
        out: set[str] = set()
        for n in nums:
            out.update({n, cc + n})
            if kind:
                out.update({cc + n + kind, n + kind})
        return sorted(out)


def pn_query_key(text: str) -> str:
    """Normalize what a user typed after `pn:` to the compact form `PublicationNumber.keys` produces."""
    key = re.sub(r"[\s\-,/.]", "", text).upper()
    m = re.match(r"^([A-Z]{2})?([A-Z]{0,2})0*(\d+)([A-Z]\d?)?$", key)
    if not m:
        return key
    cc, prefix, digits, kind = (g or "" for g in m.groups())
    return cc + prefix + digits + kind


@dataclass
class Party:
    """An applicant, assignee or inventor."""

    name: str
    country: str | None = None
    role: str = "applicant"  # applicant | assignee | inventor

    @property
    def normalized(self) -> str:
        return normalize_party_name(self.name)


_LEGAL_SUFFIXES = re.compile(
    r"\b(INCORPORATED|INC|CORPORATION|CORP|COMPANY|CO|LIMITED|LTD|LLC|L\.L\.C|PLC|GMBH|AG|SA|S\.A|SAS|SPA|"
    r"S\.P\.A|BV|B\.V|NV|N\.V|KG|KABUSHIKI KAISHA|KK|K\.K|OY|AB|AS|A/S|SE|LLP|LP)\b\.?"
)


@lru_cache(maxsize=16384)  # applicants recur across a weekly file; a name costs several regex passes
def normalize_party_name(name: str) -> str:
    """Upper-case, strip punctuation and common legal-form suffixes, so facets group one company once."""
    text = unicodedata.normalize("NFKC", name or "").upper()
    text = re.sub(r"[,;]+", " ", text)
    prev = None
    while prev != text:
        prev = text
        text = _LEGAL_SUFFIXES.sub(" ", text)
        text = re.sub(r"[\s.\-&]+$", "", text).strip()
    text = re.sub(r"\s+", " ", text)
    return text or (name or "").strip().upper()


@dataclass
class Priority:
    country: str
    number: str
    date: date | None = None


@dataclass
class Claim:
    """One claim; `depends_on` lists the claim numbers it refers to (empty means independent)."""

    num: int
    text: str
    depends_on: list[int] = field(default_factory=list)

    @property
    def independent(self) -> bool:
        return not self.depends_on


@dataclass
class Citation:
    """A cited patent (`number` in DOCDB form when known) or non-patent literature (`text`)."""

    kind: str  # "patent" | "npl"
    number: str | None = None
    text: str | None = None
    category: str | None = None  # e.g. "X", "Y", "A", "cited by examiner", "cited by applicant"
    date: date | None = None


@dataclass
class Provenance:
    """Where a document came from: source, file, its position in the file, when, and a hash of its bytes."""

    source: str
    file: str
    position: int  # 1-based index of the document within the file
    offset: int | None = None  # byte offset within the (decompressed) file
    fetched_at: str | None = None  # ISO 8601
    content_hash: str | None = None  # sha256 of the document's bytes


@dataclass
class PatentDocument:
    pn: PublicationNumber
    publication_date: date | None = None
    application_number: str | None = None
    application_date: date | None = None
    priorities: list[Priority] = field(default_factory=list)
    titles: dict[str, str] = field(default_factory=dict)  # language -> title
    abstracts: dict[str, str] = field(default_factory=dict)  # language -> abstract
    claims: list[Claim] = field(default_factory=list)
    claims_lang: str | None = None
    description: str = ""
    applicants: list[Party] = field(default_factory=list)
    inventors: list[Party] = field(default_factory=list)
    ipc: list[Classification] = field(default_factory=list)
    cpc: list[Classification] = field(default_factory=list)
    other_classes: list[Classification] = field(default_factory=list)  # USPC, Locarno, FI, F-term ...
    citations: list[Citation] = field(default_factory=list)
    family_id: str | None = None
    lang: str | None = None  # language of publication
    doc_format: str | None = None  # e.g. "uspto-ice-grant v4.7"
    provenance: Provenance | None = None
    partial: bool = False  # carries only some parts (e.g. an OPS claims response): merge into the stored record

    @property
    def id(self) -> str:
        return self.pn.docdb

    def title(self, prefer: str = "en") -> str:
        return _pick(self.titles, prefer, self.lang)

    def abstract(self, prefer: str = "en") -> str:
        return _pick(self.abstracts, prefer, self.lang)

    def applicant_names(self) -> list[str]:
        """The applicants' names for display: one per company (an applicant also listed as assignee, or spelt
        "Raytheon Company" and "RAYTHEON COMPANY", shows once, as first written)."""
        names: dict[str, str] = {}
        for p in self.applicants:
            if p.name:
                names.setdefault(p.normalized, p.name)
        return list(names.values())

    # --- serialization (JSON-friendly dicts) -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return _to_jsonable(dataclasses.asdict(self))

    def to_json(self) -> bytes:
        """`to_dict()` as compact UTF-8 JSON; orjson walks the dataclasses itself, several times faster."""
        try:
            return orjson.dumps(self)
        except (orjson.JSONEncodeError, TypeError):  # e.g. an integer beyond 64 bits: the standard library copes
            return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PatentDocument:
        d = dict(data)
        d["pn"] = PublicationNumber(**d["pn"])
        for key in ("publication_date", "application_date"):
            d[key] = _date(d.get(key))
        d["priorities"] = [Priority(p["country"], p["number"], _date(p.get("date"))) for p in d.get("priorities", [])]
        d["claims"] = [Claim(**c) for c in d.get("claims", [])]
        d["applicants"] = [Party(**p) for p in d.get("applicants", [])]
        d["inventors"] = [Party(**p) for p in d.get("inventors", [])]
        for key in ("ipc", "cpc", "other_classes"):
            d[key] = [Classification(**c) for c in d.get(key, [])]
        d["citations"] = [Citation(**{**c, "date": _date(c.get("date"))}) for c in d.get("citations", [])]
        if d.get("provenance"):
            d["provenance"] = Provenance(**d["provenance"])
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


_IDENTITY = ("publication_date", "application_number", "application_date", "family_id", "lang", "doc_format",
             "provenance")  # facts about the record: a partial update fills them, never relabels them


def merge_documents(base: PatentDocument, update: PatentDocument) -> PatentDocument:
    """`base` and `update` (two copies of one publication) as one new document: per-language texts are united,
    `update`'s other non-empty fields win; a partial `update` only adds (never empties or relabels `base`)."""
    merged = dataclasses.replace(base)
    keep = update.partial and not base.partial
    for f in dataclasses.fields(PatentDocument):
        if f.name in ("pn", "partial"):
            continue
        new = getattr(update, f.name)
        if new in (None, "", [], {}):
            continue
        old = getattr(base, f.name)
        if isinstance(new, dict):
            setattr(merged, f.name, {**old, **new})
        elif not (keep and f.name in _IDENTITY and old not in (None, "", [], {})):
            setattr(merged, f.name, new)
    merged.partial = base.partial and update.partial
    return merged


def _pick(texts: dict[str, str], prefer: str, lang: str | None) -> str:
    if not texts:
        return ""
    for key in (prefer, lang):
        if key and texts.get(key):
            return texts[key]
    return next(iter(texts.values()))


def _date(value: Any) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def _to_jsonable(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_jsonable(v) for v in value]
    return value


def parse_date(text: str | None) -> date | None:
    """Parse the date spellings patent XML uses: `20230509`, `2023-05-09`, `2023.05.09`; None when absent/bad."""
    if not text:
        return None
    digits = re.sub(r"\D", "", text.strip())
    if len(digits) != 8:
        return None
    try:
        d = date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        return None
    return d
