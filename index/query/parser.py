"""Parse the fielded boolean query language (index/query/SYNTAX.md) into the tree in `index.query.ast`.

A tokenizer turns text into positioned tokens; a recursive-descent parser (OR < AND < NOT) builds the tree.
Every invalid input raises `QuerySyntaxError` with a 0-based position. `format_query` prints a tree back.
"""

from __future__ import annotations

import calendar
import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from index.query.ast import (
    ALL_FIELDS,
    CLASS_FIELDS,
    DATE_FIELDS,
    KEYWORD_FIELDS,
    And,
    MatchAll,
    Not,
    Or,
    Phrase,
    Prefix,
    Query,
    QuerySyntaxError,
    Range,
    Term,
)

# Every accepted field name (lower-case) -> canonical field; None = the default fields.
FIELD_ALIASES: dict[str, str | None] = {
    **{f: f for f in ALL_FIELDS},
    "title": "ti", "abstract": "ab", "claims": "cl", "claim": "cl", "description": "desc", "de": "desc",
    "applicant": "pa", "assignee": "pa", "as": "pa", "inventor": "in", "ic": "ipc",
    "pubdate": "pd", "date": "pd", "appdate": "ad", "pub": "pn", "publication": "pn", "number": "pn",
    "appnum": "an", "country": "cc", "kd": "kind", "family": "fam",
    "txt": None, "tac": None, "all": None,
}
EXACT_FIELDS = CLASS_FIELDS + KEYWORD_FIELDS  # quotes only group characters here: `"H02J 50/10"` is a Term
# Limits, checked while parsing (every search and every saved profile goes through here), so no query reaches a
# backend that it cannot run: each term becomes one SQL/FTS5 clause or one Elasticsearch clause, and SQLite
# refuses expressions nested past its depth limit (~1,000), Elasticsearch past max_clause_count.
MAX_DEPTH = 100  # nesting of groups / NOT / fields; deeper input is rejected instead of exhausting the stack
MAX_TERMS = 256  # words, phrases, prefixes, dates and ranges, counted after default-field expansion
MAX_QUERY_LENGTH = 30_000  # characters (a page of text; the term limit is usually reached first)

_SPECIAL = frozenset('()"[]{}')
_FIELD_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*):")
_CMP_FIELD_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?=[<>])")
_OPERATORS = ("AND", "OR", "NOT")
_OPERAND_KINDS = frozenset({"LP", "NOT", "FIELD", "CMP", "WORD", "PHRASE", "RANGE"})


@dataclass(frozen=True)
class Token:
    """One lexical unit. `wild` lists unescaped `*`/`?` in a WORD as (index in text, char, query offset)."""

    kind: str  # LP RP AND OR NOT FIELD CMP WORD PHRASE RANGE
    pos: int
    end: int
    text: str = ""
    wild: tuple[tuple[int, str, int], ...] = ()
    low: tuple[str, int] = ("", 0)  # RANGE: (text, offset) of each end
    high: tuple[str, int] = ("", 0)
    include_low: bool = True
    include_high: bool = True


def _error(query: str, position: int, message: str, hints: Iterable[str] = ()) -> QuerySyntaxError:
    return QuerySyntaxError(message=message, query=query, position=position, hints=list(hints))


def tokenize(query: str) -> list[Token]:
    """Split `query` into tokens; unbalanced quotes or brackets raise `QuerySyntaxError`."""
    tokens: list[Token] = []
    i, n = 0, len(query)
    while i < n:
        c = query[i]
        if c.isspace():
            i += 1
        elif c in "()":
            tokens.append(Token("LP" if c == "(" else "RP", i, i + 1))
            i += 1
        elif c == '"':
            tokens.append(_scan_phrase(query, i))
            i = tokens[-1].end
        elif c in "[{":
            tokens.append(_scan_range(query, i))
            i = tokens[-1].end
        elif c in "]}":
            raise _error(query, i, f"unexpected `{c}` without an opening bracket")
        elif query.startswith(("&&", "||"), i):
            tokens.append(Token("AND" if c == "&" else "OR", i, i + 2, query[i:i + 2]))
            i += 2
        elif c in "!-":
            tokens.append(Token("NOT", i, i + 1, c))
            i += 1
        elif c in "<>":
            op = query[i:i + 2] if query.startswith(("<=", ">="), i) else c
            tokens.append(Token("CMP", i, i + len(op), op))
            i += len(op)
        elif m := _FIELD_RE.match(query, i):
            tokens.append(Token("FIELD", i, m.end(), m.group(1)))
            i = m.end()
        elif (m := _CMP_FIELD_RE.match(query, i)) and m.group(1).lower() in FIELD_ALIASES:
            tokens.append(Token("FIELD", i, m.end(), m.group(1)))  # `pd>=2020`: the CMP follows next round
            i = m.end()
        else:
            tokens.append(_scan_word(query, i))
            i = tokens[-1].end
    return tokens


def _scan_phrase(query: str, start: int) -> Token:
    buf: list[str] = []
    j = start + 1
    while j < len(query):
        ch = query[j]
        if ch == "\\" and j + 1 < len(query):
            buf.append(query[j + 1])
            j += 2
        elif ch == '"':
            return Token("PHRASE", start, j + 1, "".join(buf))
        else:
            buf.append(ch)
            j += 1
    raise _error(query, start, "unclosed quote `\"`", ['close the phrase with `"`'])


def _scan_range(query: str, start: int) -> Token:
    j = start + 1
    while j < len(query) and query[j] not in "]}":
        if query[j] in '()[{"':
            break
        j += 1
    if j >= len(query) or query[j] not in "]}":
        raise _error(query, start, f"unclosed range `{query[start]}`", ["a range is written `[low TO high]`"])
    parts = [(m.group(), start + 1 + m.start()) for m in re.finditer(r"\S+", query[start + 1:j])]
    if len(parts) != 3 or parts[1][0].upper() != "TO":
        raise _error(query, start, "malformed range; expected `[low TO high]`",
                     ["e.g. pd:[2020-01-01 TO 2024-12-31]; use * for an open end"])
    return Token("RANGE", start, j + 1, query[start:j + 1], low=parts[0], high=parts[2],
                 include_low=query[start] == "[", include_high=query[j] == "]")


def _scan_word(query: str, start: int) -> Token:
    buf: list[str] = []
    wild: list[tuple[int, str, int]] = []
    j = start
    while j < len(query):
        ch = query[j]
        if ch.isspace() or ch in _SPECIAL or query.startswith(("&&", "||"), j):
            break
        if ch == "\\" and j + 1 < len(query):
            buf.append(query[j + 1])
            j += 2
            continue
        if ch in "*?":
            wild.append((len(buf), ch, j))
        buf.append(ch)
        j += 1
    raw = query[start:j]
    if raw in _OPERATORS:
        return Token(raw, start, j, raw)
    return Token("WORD", start, j, "".join(buf), wild=tuple(wild))


def resolve_field(name: str) -> str | None:
    """Canonical field for a name or alias (case-insensitive); None = default fields. KeyError if unknown."""
    return FIELD_ALIASES[name.lower()]


def _field_hints(name: str) -> list[str]:
    close = difflib.get_close_matches(name.lower(), list(FIELD_ALIASES), n=1, cutoff=0.6)
    hints = [f"did you mean `{close[0]}:`?"] if close else []
    aliases: dict[str, list[str]] = {}
    for alias, canon in FIELD_ALIASES.items():
        if alias != (canon or "all"):
            aliases.setdefault(canon or "all", []).append(alias)
    listed = [f"{f} ({', '.join(aliases[f])})" if f in aliases else f for f in (*ALL_FIELDS, "all")]
    return hints + ["valid fields: " + "; ".join(listed)]


# --- dates -----------------------------------------------------------------------------------------------

_YEAR = re.compile(r"(\d{4})")
_MONTH = re.compile(r"(\d{4})[-/.](\d{1,2})")
_DAY = re.compile(r"(\d{4})([-/.])(\d{1,2})\2(\d{1,2})")
_COMPACT_DAY = re.compile(r"(\d{4})(\d{2})(\d{2})")


def date_period(text: str) -> tuple[date, date] | None:
    """The first and last day a date means: `2020` a year, `2020-05` a month, `2020-05-17`/`20200517` a day."""
    try:
        if m := _YEAR.fullmatch(text):
            y = int(m.group(1))
            return date(y, 1, 1), date(y, 12, 31)
        if m := _MONTH.fullmatch(text):
            y, mo = int(m.group(1)), int(m.group(2))
            return date(y, mo, 1), date(y, mo, calendar.monthrange(y, mo)[1])
        if (m := _DAY.fullmatch(text)) or (m := _COMPACT_DAY.fullmatch(text)):
            groups = [g for g in m.groups() if g and g.isdigit()]
            day = date(*(int(g) for g in groups))
            return day, day
    except ValueError:
        return None
    return None


# --- tree helpers ----------------------------------------------------------------------------------------

def _and(children: Sequence[Query]) -> Query:
    flat: list[Query] = []
    for child in children:
        flat.extend(child.children if isinstance(child, And) else (child,))
    kept: list[Query] = [c for c in flat if not isinstance(c, MatchAll)] or [MatchAll()]
    return kept[0] if len(kept) == 1 else And(tuple(kept))


def _or(children: Sequence[Query]) -> Query:
    flat: list[Query] = []
    for child in children:
        flat.extend(child.children if isinstance(child, Or) else (child,))
    if any(isinstance(c, MatchAll) for c in flat):
        return MatchAll()
    return flat[0] if len(flat) == 1 else Or(tuple(flat))


def _not(child: Query) -> Query:
    return child.child if isinstance(child, Not) else Not(child)


# --- parser ----------------------------------------------------------------------------------------------

class _Parser:
    def __init__(self, query: str, tokens: list[Token], default_fields: tuple[str, ...] | None) -> None:
        self.query = query
        self.tokens = tokens
        self.i = 0
        self.default_fields = default_fields
        self.terms = 0

    def count_terms(self, tok: Token, n: int = 1) -> None:
        """Count `n` more terms (the leaves of the tree); past MAX_TERMS the query is refused here."""
        self.terms += n
        if self.terms > MAX_TERMS:
            raise self.error(tok.pos, f"query has too many terms: at most {MAX_TERMS} words, phrases, prefixes "
                                      "and dates (MAX_TERMS)",
                             ["split it into several queries or profiles, or use prefixes (wire*) and classes "
                              "(ipc:H02J*) instead of long lists of words"])

    def error(self, position: int, message: str, hints: Iterable[str] = ()) -> QuerySyntaxError:
        return _error(self.query, position, message, hints)

    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def parse(self) -> Query:
        node = self.or_expr(None, 0)
        tok = self.peek()
        if tok is not None:  # only a `)` stops the top-level expression early
            raise self.error(tok.pos, "unmatched `)`", ["remove it or add a matching `(`"])
        return node

    def expect_operand(self, op: Token) -> None:
        nxt = self.peek()
        if nxt is None or nxt.kind not in _OPERAND_KINDS:
            raise self.error(op.pos, f"`{op.text}` has nothing after it")

    def or_expr(self, field: str | None, depth: int) -> Query:
        children = [self.and_expr(field, depth)]
        while (tok := self.peek()) is not None and tok.kind == "OR":
            self.take()
            self.expect_operand(tok)
            children.append(self.and_expr(field, depth))
        return _or(children)

    def and_expr(self, field: str | None, depth: int) -> Query:
        children = [self.unary(field, depth)]
        while (tok := self.peek()) is not None and tok.kind not in ("RP", "OR"):
            if tok.kind == "AND":
                self.take()
                self.expect_operand(tok)
            children.append(self.unary(field, depth))
        return _and(children)

    def unary(self, field: str | None, depth: int) -> Query:
        tok = self.peek()
        if tok is None:  # callers check for an operand first; an empty token list is caught earlier
            raise self.error(len(self.query), "unexpected end of query")
        if depth > MAX_DEPTH:
            raise self.error(tok.pos, f"query nested too deeply: more than {MAX_DEPTH} levels of brackets, NOT "
                                      "and fields (MAX_DEPTH)", ["remove brackets that group a single term"])
        if tok.kind in ("AND", "OR"):
            raise self.error(tok.pos, f"`{tok.text}` has nothing before it")
        if tok.kind == "RP":
            raise self.error(tok.pos, "unmatched `)`")
        if tok.kind == "NOT":
            self.take()
            self.expect_operand(tok)
            return _not(self.unary(field, depth + 1))
        return self.primary(field, depth)

    def primary(self, field: str | None, depth: int) -> Query:
        tok = self.take()
        if tok.kind == "FIELD":
            try:
                inner = resolve_field(tok.text)
            except KeyError:
                raise self.error(tok.pos, f"unknown field `{tok.text}`; valid fields: {', '.join(ALL_FIELDS)}, all",
                                 _field_hints(tok.text)) from None
            nxt = self.peek()
            if nxt is not None and nxt.kind == "FIELD":
                raise self.error(nxt.pos, f"field `{nxt.text}:` directly after field `{tok.text}:`",
                                 ["to search a value containing `:`, quote it or escape the colon as `\\:`"])
            if nxt is None or nxt.kind not in _OPERAND_KINDS:
                raise self.error(tok.pos, f"field `{tok.text}:` has nothing after it")
            return self.unary(inner, depth + 1)
        if tok.kind == "LP":
            nxt = self.peek()
            if nxt is not None and nxt.kind == "RP":
                raise self.error(tok.pos, "empty group `()`")
            if nxt is None:
                raise self.error(tok.pos, "unclosed `(`", ["add a matching `)`"])
            node = self.or_expr(field, depth + 1)
            if self.peek() is None:
                raise self.error(tok.pos, "unclosed `(`", ["add a matching `)`"])
            self.take()
            return node
        expansion = len(self.default_fields) if field is None and self.default_fields else 1
        self.count_terms(tok, 1 if tok.kind in ("RANGE", "CMP") else expansion)
        if tok.kind == "RANGE":
            return self.range_(field, tok)
        if tok.kind == "CMP":
            return self.comparison(field, tok)
        if tok.kind == "PHRASE":
            return self.phrase(field, tok)
        return self.word(field, tok)

    def leaf(self, node_type: type[Term] | type[Phrase] | type[Prefix], field: str | None, text: str) -> Query:
        if field is None and self.default_fields:
            return _or([node_type(f, text) for f in self.default_fields])
        return node_type(field, text)

    def phrase(self, field: str | None, tok: Token) -> Query:
        if not tok.text.strip():
            raise self.error(tok.pos, "empty phrase `\"\"`")
        if field in DATE_FIELDS:
            return self.date_value(field, tok.text.strip(), tok.pos + 1)
        if field in EXACT_FIELDS:
            return Term(field, tok.text.strip())
        return self.leaf(Phrase, field, tok.text)

    def word(self, field: str | None, tok: Token) -> Query:
        text = tok.text
        for index, char, pos in tok.wild:
            if char == "?":
                raise self.error(pos, "`?` wildcards are not supported", ["use `*` at the end of a word: wire*"])
            if index != len(text) - 1:
                raise self.error(pos, "`*` is only supported at the end of a word (a prefix like `wire*`)")
        if tok.wild and text == "*":
            before = self.query[tok.pos - 1] if tok.pos else " "
            if field is None and (before.isspace() or before == "("):
                return MatchAll()
            raise self.error(tok.pos, "`*` alone is not a term; put it after a word (`wire*`)")
        if field in DATE_FIELDS:
            if tok.wild:
                raise self.error(tok.wild[-1][2], f"wildcards do not work on `{field}`; use a range",
                                 [f"e.g. {field}:[2020 TO 2021] or {field}:2021"])
            return self.date_value(field, text, tok.pos)
        if tok.wild:
            return self.leaf(Prefix, field, text[:-1])
        return self.leaf(Term, field, text)

    def date_value(self, field: str, text: str, pos: int) -> Query:
        period = date_period(text)
        if period is None:
            raise self.error(pos, f"invalid date `{text}` for `{field}`", _DATE_HINTS)
        return Range(field, period[0].isoformat(), period[1].isoformat())

    def date_bound(self, field: str, text: str, pos: int, low: bool, inclusive: bool) -> str | None:
        """One end of a range, rounded like Elasticsearch date math: `> 2020` means after 2020-12-31."""
        if text == "*":
            return None
        period = date_period(text)
        if period is None:
            raise self.error(pos, f"invalid date `{text}` for `{field}`", _DATE_HINTS)
        start, end = period
        return (start if low == inclusive else end).isoformat()

    def check_date_field(self, field: str | None, tok: Token, what: str) -> str:
        if field not in DATE_FIELDS:
            where = f"`{field}`" if field else "a field-less term"
            raise self.error(tok.pos, f"{what} only work on date fields (pd, ad), not on {where}",
                             ["e.g. pd:[2020-01-01 TO 2024-12-31] or pd>=2020"])
        return field

    def range_(self, field: str | None, tok: Token) -> Query:
        fld = self.check_date_field(field, tok, "ranges")
        low = self.date_bound(fld, tok.low[0], tok.low[1], True, tok.include_low)
        high = self.date_bound(fld, tok.high[0], tok.high[1], False, tok.include_high)
        if low is not None and high is not None and (
                low > high or (low == high and not (tok.include_low and tok.include_high))):
            raise self.error(tok.low[1], f"empty range: `{tok.low[0]}` is not before `{tok.high[0]}`")
        return Range(fld, low, high, tok.include_low, tok.include_high)

    def comparison(self, field: str | None, tok: Token) -> Query:
        fld = self.check_date_field(field, tok, "comparisons")
        value = self.peek()
        if value is None or value.kind not in ("WORD", "PHRASE") or value.text.strip() in ("", "*"):
            raise self.error(tok.pos, f"`{tok.text}` needs a date after it", _DATE_HINTS)
        self.take()
        text, pos = value.text.strip(), value.pos + (value.kind == "PHRASE")
        if tok.text.startswith(">"):
            low = self.date_bound(fld, text, pos, True, tok.text == ">=")
            return Range(fld, low, None, tok.text == ">=", True)
        high = self.date_bound(fld, text, pos, False, tok.text == "<=")
        return Range(fld, None, high, True, tok.text == "<=")


_DATE_HINTS = ["dates are written 2020-01-31, 20200131, 2020-01 (a month) or 2020 (a year)"]


def parse_query(text: str, default_fields: Sequence[str] | str | None = None) -> Query:
    """Parse `text` into a query tree; raise `QuerySyntaxError` (with position) for any invalid input.

    `default_fields` (names or aliases) replaces field-less terms by an Or over those fields; None leaves
    them with field None, which the backends read as `ast.DEFAULT_FIELDS`.
    """
    if not isinstance(text, str):
        raise _error(str(text), 0, "query must be a string")
    defaults: tuple[str, ...] | None = None
    if default_fields is not None:
        names = (default_fields,) if isinstance(default_fields, str) else tuple(default_fields)
        resolved = []
        for name in names:
            canon = FIELD_ALIASES.get(str(name).lower(), "?")
            if canon is None or canon == "?" or canon in DATE_FIELDS:
                raise _error(text, 0, f"invalid default field `{name}`", _field_hints(str(name)))
            resolved.append(canon)
        defaults = tuple(dict.fromkeys(resolved)) or None
    if not text.strip():
        raise _error(text, 0, "empty query", ["type some words, e.g. ti:(wireless AND charging)"])
    if len(text) > MAX_QUERY_LENGTH:
        raise _error(text, 0, f"query too long: {len(text):,} characters, at most "
                     f"{MAX_QUERY_LENGTH:,} (MAX_QUERY_LENGTH)", ["split it into several queries or profiles"])
    if text.strip() == "*:*":
        return MatchAll()
    return _Parser(text, tokenize(text), defaults).parse()


# --- printing --------------------------------------------------------------------------------------------

_ESCAPE = frozenset('()"[]{}\\*?:&|<>')


def _word(text: str, quote_spaces: bool) -> str:
    """Write `text` so it tokenizes back to one WORD with exactly this text."""
    if quote_spaces and any(ch.isspace() for ch in text) and text == text.strip():
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    out = [("\\" + ch) if ch in _ESCAPE or ch.isspace() else ch for ch in text]
    if out and (text[0] in "-!" or text in _OPERATORS):
        out[0] = "\\" + out[0]
    return "".join(out)


def _leaf(node: Term | Phrase | Prefix) -> str:
    prefix = f"{node.field}:" if node.field else ""
    if isinstance(node, Phrase):
        return prefix + '"' + node.text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    body = _word(node.text, quote_spaces=isinstance(node, Term) and node.field in EXACT_FIELDS)
    return prefix + body + ("*" if isinstance(node, Prefix) else "")


def format_query(query: Query) -> str:
    """Print a tree in the query syntax; `parse_query(format_query(t)) == t` for every parsed tree."""
    if isinstance(query, Or):
        return " OR ".join(_group(c, (Or, And)) for c in query.children)
    if isinstance(query, And):
        return " AND ".join(_group(c, (Or, And)) for c in query.children)
    if isinstance(query, Not):
        return "NOT " + _group(query.child, (Or, And))
    if isinstance(query, Range):
        low = query.low or "*"
        high = query.high or "*"
        return (f"{query.field}:{'[' if query.include_low else '{'}{low} TO {high}"
                f"{']' if query.include_high else '}'}")
    if isinstance(query, MatchAll):
        return "*"
    return _leaf(query)


def _group(query: Query, wrap: tuple[type, ...]) -> str:
    text = format_query(query)
    return f"({text})" if isinstance(query, wrap) else text
