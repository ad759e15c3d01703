"""IPC / CPC classification symbols parsed into their parts (section, class, subclass, group, subgroup)."""

from __future__ import annotations

import re
from dataclasses import dataclass

# "H02J 50/10", "H02J50/10", "H02J  50/10", "H02J0050100000" (fixed 14+ char form), "A61K 9/00 (2006.01)"
_SPACED = re.compile(r"^([A-HY])\s*(\d{2})\s*([A-Z])\s*(\d{1,4})\s*/\s*(\d{1,6})")
_FIXED = re.compile(r"^([A-HY])(\d{2})([A-Z])(\d{4})(\d{6})")
_FIXED_SHORT = re.compile(r"^([A-HY])(\d{2})([A-Z])\s*(\d{1,4})(\d{2})$")  # "B65D 8304" old ST.32 style
_SUBCLASS = re.compile(r"^([A-HY])\s*(\d{2})\s*([A-Z])$")


@dataclass
class Classification:
    """One classification symbol. `symbol` is the compact canonical form, e.g. `H02J50/10`."""

    scheme: str  # IPC | CPC | USPC | LOCARNO | FI | FTERM | ...
    symbol: str
    section: str | None = None
    cls: str | None = None  # two digits
    subclass: str | None = None  # one letter
    group: str | None = None
    subgroup: str | None = None
    version: str | None = None
    value: str | None = None  # inventive / additional (I/A) where given
    first: bool = False  # main / first classification

    @property
    def subclass_symbol(self) -> str | None:
        """`H02J` — the level facets group by."""
        if self.section and self.cls and self.subclass:
            return f"{self.section}{self.cls}{self.subclass}"
        return None

    @property
    def display(self) -> str:
        """The conventional printed form, e.g. `H02J 50/10`."""
        if self.subclass_symbol and self.group:
            return f"{self.subclass_symbol} {self.group}/{self.subgroup or '00'}"
        return self.symbol

    @classmethod
    def parse(cls, text: str, scheme: str = "IPC", **extra: object) -> Classification:
        """Parse an IPC/CPC symbol in any common spelling; other schemes keep the text as the symbol."""
        raw = (text or "").strip().upper()
        if scheme.upper() in ("IPC", "CPC", "IPCR"):
            raw = re.sub(r"^(INT\.?\s*CL\.?\s*\d*\s*:?|IPC\s*\d*\s*:?)\s*", "", raw)
            m = _FIXED.match(raw.replace(" ", "")) if re.match(r"^[A-HY]\d\d[A-Z]\s*\d{4}\d{6}", raw) else None
            m = m or _SPACED.match(raw) or _FIXED_SHORT.match(raw)
            if m:
                sec, c2, sub, grp, sg = m.groups()
                grp = str(int(grp))
                sg = sg.rstrip("0") if len(sg) > 2 else sg
                sg = sg.ljust(2, "0")
                return cls(
                    scheme=scheme.upper().replace("IPCR", "IPC"), symbol=f"{sec}{c2}{sub}{grp}/{sg}",
                    section=sec, cls=c2, subclass=sub, group=grp, subgroup=sg, **extra,  # type: ignore[arg-type]
                )
            m = _SUBCLASS.match(raw)
            if m:
                sec, c2, sub = m.groups()
                return cls(scheme=scheme.upper(), symbol=f"{sec}{c2}{sub}", section=sec, cls=c2, subclass=sub,
                           **extra)  # type: ignore[arg-type]
        return cls(scheme=scheme.upper(), symbol=re.sub(r"\s+", " ", raw), **extra)  # type: ignore[arg-type]

    @classmethod
    def from_parts(cls, scheme: str, section: str, klass: str, subclass: str, group: str, subgroup: str,
                   **extra: object) -> Classification:
        """Build from the separate elements ST.36/ICE XML uses (<section>, <class>, <subclass>, ...)."""
        return cls.parse(f"{section}{klass}{subclass} {group}/{subgroup}", scheme, **extra)


def normalize_class_query(text: str) -> str:
    """Normalize a user's `ipc:`/`cpc:` term to the compact symbol form (`H02J 50/10` -> `H02J50/10`)."""
    raw = re.sub(r"\s+", "", (text or "").upper())
    m = re.match(r"^([A-HY]\d\d[A-Z])0*(\d+)(?:/(\d*))?$", raw)
    if m:
        sub, grp, sg = m.groups()
        if sg is None:
            return f"{sub}{grp}"
        return f"{sub}{grp}/{sg}"
    return raw


def class_matches(symbol: str, query: str, prefix: bool = False) -> bool:
    """Hierarchical match: `H02J` matches everything in the subclass, `H02J50` the main group,
    `H02J50/10` exactly that symbol; with `prefix` (a trailing `*`) any symbol starting with the text."""
    q = normalize_class_query(query)
    if prefix:
        return symbol.startswith(q)
    if "/" in q:
        return symbol == q
    if len(q) <= 4:
        return symbol.startswith(q)
    return symbol.startswith(q + "/")
