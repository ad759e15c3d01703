"""Interest profiles: what a subscriber wants to hear about, validated, and read from / written to TOML.

Pure logic: `validate_profile` takes an optional `known_document` callback (the shell passes the index's `get`)
so unknown seed patents are reported without this module touching the index.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from index.model import PublicationNumber, normalize_party_name
from index.query.ast import QuerySyntaxError
from index.query.parser import parse_query

# letters and digits of any script (电池隔膜, バッテリー, batteries-2026), then also '.', '_' or '-'
_NAME_RE = re.compile(r"^[^\W_][\w.\-]{0,63}\Z")
_CLASS_RE = re.compile(r"^[A-HY](\d{2}([A-Z](\d{1,4}(/\d{0,6})?)?)?)?$")
LIST_FIELDS = ("classes", "exclude_classes", "applicants", "seeds", "exclude_terms", "languages")


@dataclass
class Profile:
    """One subscriber interest. `classes`/`exclude_classes` are IPC/CPC prefixes (`H02J`, `H02J50/10`)."""

    name: str
    owner: str = ""  # who to ask about it (free text, e.g. a team's address)
    outlet_id: int | None = None  # the outlet it belongs to (None: service-wide); stored as a column, not in spec
    description: str = ""
    query: str | None = None  # optional boolean query in the project's query language
    classes: list[str] = field(default_factory=list)
    exclude_classes: list[str] = field(default_factory=list)
    applicants: list[str] = field(default_factory=list)  # applicants / competitors to watch
    seeds: list[str] = field(default_factory=list)  # example patents by publication number
    exclude_terms: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)  # publication languages (empty: any)
    threshold: float = 0.35  # minimum fused score in [0, 1]
    max_items: int = 20  # at most this many matches per run (one digest)

    @property
    def applicants_normalized(self) -> list[str]:
        return sorted({normalize_party_name(a) for a in self.applicants})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ProfileError(str(data.get("name", "?")), [f"unknown key(s): {', '.join(unknown)}"])
        values = dict(data)
        for key in LIST_FIELDS:
            if isinstance(values.get(key), str):
                values[key] = [values[key]]
        return cls(**values)


class ProfileError(ValueError):
    """A profile that cannot be used; `problems` lists every reason, each naming the field."""

    def __init__(self, name: str, problems: list[str]) -> None:
        self.name = name
        self.problems = problems
        super().__init__(f"profile {name!r} is invalid:\n  - " + "\n  - ".join(problems))


def normalize_class_prefix(text: str) -> str:
    """`H02J 50/10` -> `H02J50/10`; `h02j` -> `H02J` (the compact form index symbols use)."""
    raw = re.sub(r"\s+", "", text.upper())
    m = re.match(r"^([A-HY]\d\d[A-Z])0*(\d+)(/.*)?$", raw)
    return f"{m.group(1)}{m.group(2)}{m.group(3) or ''}" if m else raw


def validate_profile(profile: Profile, known_document: Callable[[str], bool] | None = None) -> Profile:
    """Check every field and return a normalized copy; raise ProfileError listing all problems."""
    problems: list[str] = []
    if not isinstance(profile.name, str) or not _NAME_RE.match(profile.name):
        problems.append("name: use 1-64 letters (any script), digits, '.', '_' or '-', starting with a letter or "
                        "digit")
    for key in LIST_FIELDS:
        value = getattr(profile, key)
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            problems.append(f"{key}: must be a list of non-empty strings")
    if problems:
        raise ProfileError(str(profile.name), problems)
    query = (profile.query or "").strip() or None
    if query:
        try:
            parse_query(query)
        except QuerySyntaxError as exc:
            problems.append(f"query: {exc}")
    if not (profile.description.strip() or query or profile.classes or profile.applicants or profile.seeds):
        problems.append("profile is empty: give a description, a query, classes, applicants or seeds")
    classes = [normalize_class_prefix(c) for c in profile.classes]
    excluded = [normalize_class_prefix(c) for c in profile.exclude_classes]
    for label, values in (("classes", classes), ("exclude_classes", excluded)):
        bad = [c for c in values if not _CLASS_RE.match(c)]
        if bad:
            problems.append(f"{label}: not an IPC/CPC symbol or prefix: {', '.join(bad)} (e.g. H02J or H02J50/10)")
    seeds: list[str] = []
    for seed in profile.seeds:
        try:
            pn = PublicationNumber.parse(seed).docdb
        except ValueError:
            problems.append(f"seeds: not a publication number: {seed!r} (e.g. US-11646472-B2)")
            continue
        if known_document is not None and not known_document(pn):
            problems.append(f"seeds: {pn} is not in the index (harvest it first, or remove it)")
        seeds.append(pn)
    if not isinstance(profile.threshold, int | float) or not 0.0 <= float(profile.threshold) <= 1.0:
        problems.append(f"threshold: must be a number between 0 and 1, got {profile.threshold!r}")
    if not isinstance(profile.max_items, int) or isinstance(profile.max_items, bool) or profile.max_items < 1:
        problems.append(f"max_items: must be a positive integer, got {profile.max_items!r}")
    if problems:
        raise ProfileError(profile.name, problems)
    return Profile(
        name=profile.name, owner=profile.owner.strip(), outlet_id=profile.outlet_id,
        description=profile.description.strip(), query=query,
        classes=_unique(classes), exclude_classes=_unique(excluded), applicants=_unique(profile.applicants),
        seeds=_unique(seeds), exclude_terms=_unique(t.strip().lower() for t in profile.exclude_terms),
        languages=_unique(lang.strip().lower() for lang in profile.languages),
        threshold=float(profile.threshold), max_items=int(profile.max_items),
    )


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(v.strip() for v in values))


# --- TOML ---------------------------------------------------------------------------------------------------
def parse_profiles_toml(text: str, source: str = "<toml>") -> list[Profile]:
    """Profiles from TOML: `[[profile]]` tables (or one top-level table); not yet validated."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(source, [f"not valid TOML: {exc}"]) from None
    tables = data.get("profile", [data] if "name" in data else [])
    if isinstance(tables, dict):
        tables = [tables]
    if not tables:
        raise ProfileError(source, ["no profile found: write one or more [[profile]] tables with a name"])
    profiles = []
    for table in tables:
        if "name" not in table:
            raise ProfileError(source, ["a [[profile]] table has no name"])
        try:
            profiles.append(Profile.from_dict(table))
        except TypeError as exc:
            raise ProfileError(str(table.get("name")), [str(exc)]) from None
    return profiles


def load_profiles_toml(path: Path) -> list[Profile]:
    return parse_profiles_toml(Path(path).read_text(encoding="utf-8"), str(path))


def dump_profiles_toml(profiles: Iterable[Profile]) -> str:
    """Write profiles as `[[profile]]` tables (strings, numbers and string lists only)."""
    out: list[str] = []
    for p in profiles:
        out.append("[[profile]]")
        for key, value in p.to_dict().items():
            if value is None or value == []:
                continue
            out.append(f"{key} = {_toml_value(value)}")
        out.append("")
    return "\n".join(out)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a valid TOML basic string
