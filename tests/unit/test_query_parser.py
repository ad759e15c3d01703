"""The query language parser: every construct, precedence, aliases, errors with positions, round-trips."""

from __future__ import annotations

import random
from datetime import date

import pytest

from index.query.ast import ALL_FIELDS, And, MatchAll, Not, Or, Phrase, Prefix, QuerySyntaxError, Range, Term
from index.query.parser import FIELD_ALIASES, MAX_DEPTH, MAX_TERMS, date_period, format_query, parse_query


def t(text: str, field: str | None = None) -> Term:
    return Term(field, text)


def syntax_error(query: str, **kwargs: object) -> QuerySyntaxError:
    with pytest.raises(QuerySyntaxError) as info:
        parse_query(query, **kwargs)  # type: ignore[arg-type]
    err = info.value
    assert err.query == query
    assert 0 <= err.position <= len(query)
    return err


# --- the brief's example --------------------------------------------------------------------------------

def test_example_query_tree() -> None:
    q = 'ti:(wireless AND charging) AND ipc:H02J50* AND pd:[2020-01-01 TO 2024-12-31] AND pa:"Toyota"'
    assert parse_query(q) == And((
        t("wireless", "ti"), t("charging", "ti"), Prefix("ipc", "H02J50"),
        Range("pd", "2020-01-01", "2024-12-31"), Phrase("pa", "Toyota"),
    ))


# --- operators and precedence ---------------------------------------------------------------------------

@pytest.mark.parametrize("query, expected", [
    ("a", t("a")),
    ("a b", And((t("a"), t("b")))),
    ("a AND b", And((t("a"), t("b")))),
    ("a && b", And((t("a"), t("b")))),
    ("a&&b", And((t("a"), t("b")))),
    ("a OR b", Or((t("a"), t("b")))),
    ("a || b", Or((t("a"), t("b")))),
    ("a||b", Or((t("a"), t("b")))),
    ("NOT a", Not(t("a"))),
    ("!a", Not(t("a"))),
    ("! a", Not(t("a"))),
    ("-a", Not(t("a"))),
    ("a -b", And((t("a"), Not(t("b"))))),
    ("a NOT b", And((t("a"), Not(t("b"))))),
    ("a AND NOT b", And((t("a"), Not(t("b"))))),
    ("-ti:a", Not(t("a", "ti"))),
    ("-(a OR b)", Not(Or((t("a"), t("b"))))),
    ('-"fuel cell"', Not(Phrase(None, "fuel cell"))),
    # lower-case and/or/not are ordinary words; so are words that merely start with an operator
    ("a and b", And((t("a"), t("and"), t("b")))),
    ("a or b", And((t("a"), t("or"), t("b")))),
    ("not a", And((t("not"), t("a")))),
    ("ANDROID ORBIT NOTE", And((t("ANDROID"), t("ORBIT"), t("NOTE")))),
    # precedence NOT > AND > OR
    ("a OR b AND c", Or((t("a"), And((t("b"), t("c")))))),
    ("a AND b OR c", Or((And((t("a"), t("b"))), t("c")))),
    ("a b OR c d", Or((And((t("a"), t("b"))), And((t("c"), t("d")))))),
    ("NOT a AND b", And((Not(t("a")), t("b")))),
    ("NOT a OR b", Or((Not(t("a")), t("b")))),
    ("a OR NOT b AND c", Or((t("a"), And((Not(t("b")), t("c")))))),
    ("(a OR b) AND c", And((Or((t("a"), t("b"))), t("c")))),
    ("NOT (a AND b) OR c", Or((Not(And((t("a"), t("b")))), t("c")))),
    # simplification: flattening, single-child groups, double negation
    ("a AND (b AND (c AND d))", And((t("a"), t("b"), t("c"), t("d")))),
    ("(a OR b) OR (c OR d)", Or((t("a"), t("b"), t("c"), t("d")))),
    ("((a))", t("a")),
    ("(((a OR b)))", Or((t("a"), t("b")))),
    ("NOT NOT a", t("a")),
    ("NOT (NOT a)", t("a")),
    ("--a", t("a")),
])
def test_operators_and_precedence(query: str, expected: object) -> None:
    assert parse_query(query) == expected


def test_operator_words_are_whole_tokens() -> None:
    assert parse_query("a AND(b OR c)") == And((t("a"), Or((t("b"), t("c")))))
    assert parse_query("(a)OR(b)") == Or((t("a"), t("b")))
    assert parse_query(r"\AND") == t("AND")  # an escaped operator word is a term
    assert parse_query('ti:"OR"') == Phrase("ti", "OR")


# --- fields ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("alias, canonical", sorted((k, v) for k, v in FIELD_ALIASES.items()))
def test_every_alias_maps_to_its_field(alias: str, canonical: str | None) -> None:
    if canonical in ("pd", "ad"):
        expected: object = Range(canonical, "2020-01-01", "2020-12-31")
        assert parse_query(f"{alias}:2020") == expected
        assert parse_query(f"{alias.upper()}:2020") == expected
    else:
        assert parse_query(f"{alias}:x") == Term(canonical, "x")
        assert parse_query(f"{alias.upper()}:x") == Term(canonical, "x")


@pytest.mark.parametrize("alias, canonical", [
    ("title", "ti"), ("abstract", "ab"), ("claims", "cl"), ("claim", "cl"), ("description", "desc"),
    ("de", "desc"), ("applicant", "pa"), ("assignee", "pa"), ("as", "pa"), ("inventor", "in"), ("ic", "ipc"),
    ("pubdate", "pd"), ("date", "pd"), ("appdate", "ad"), ("pub", "pn"), ("publication", "pn"),
    ("number", "pn"), ("appnum", "an"), ("country", "cc"), ("kd", "kind"), ("family", "fam"), ("txt", None),
    ("tac", None), ("all", None), ("Title", "ti"), ("IPC", "ipc"),
])
def test_documented_aliases(alias: str, canonical: str | None) -> None:
    assert FIELD_ALIASES[alias.lower()] == canonical
    assert all(f in FIELD_ALIASES and FIELD_ALIASES[f] == f for f in ALL_FIELDS)


def test_field_applies_inside_group() -> None:
    assert parse_query("ti:(wireless OR inductive) charging") == And((
        Or((t("wireless", "ti"), t("inductive", "ti"))), t("charging"),
    ))
    assert parse_query('ab:(a "b c" d* NOT e)') == And((
        t("a", "ab"), Phrase("ab", "b c"), Prefix("ab", "d"), Not(t("e", "ab")),
    ))
    # an inner field overrides the group's field; all: goes back to the default fields
    assert parse_query("ti:(a OR ab:b OR all:c)") == Or((t("a", "ti"), t("b", "ab"), t("c")))
    assert parse_query("pd:(2020 OR 2022)") == Or((
        Range("pd", "2020-01-01", "2020-12-31"), Range("pd", "2022-01-01", "2022-12-31"),
    ))
    assert parse_query("ti:NOT a") == Not(t("a", "ti"))
    assert parse_query("ti: wireless") == t("wireless", "ti")  # blanks after the colon are allowed


def test_colons_inside_values_that_are_not_fields() -> None:
    assert parse_query("10:30") == t("10:30")
    assert parse_query(r"ti:a\:b") == t("a:b", "ti")
    err = syntax_error("ti:a:b")  # `a:` reads as a field: escape or quote the colon
    assert err.position == 3 and "field `a:` directly after field `ti:`" in err.message
    assert "escape the colon as `\\:`" in err.hints[0]


# --- terms, phrases, prefixes ---------------------------------------------------------------------------

def test_values_keep_what_was_typed() -> None:
    assert parse_query("pn:US-11646472-B2") == t("US-11646472-B2", "pn")
    assert parse_query("pn:EP1605745A1") == t("EP1605745A1", "pn")
    assert parse_query("ipc:H02J50/10") == t("H02J50/10", "ipc")
    assert parse_query("cpc:Y02E60/50") == t("Y02E60/50", "cpc")
    assert parse_query('ipc:"H02J 50/10"') == t("H02J 50/10", "ipc")  # quotes only group on exact fields
    assert parse_query('pn:"US 11,646,472 B2"') == t("US 11,646,472 B2", "pn")
    # unquoted, the space separates two clauses
    assert parse_query("ipc:H02J 50/10") == And((t("H02J", "ipc"), t("50/10")))
    assert parse_query("wireless-charging") == t("wireless-charging")
    assert parse_query("ti:Wireless") == t("Wireless", "ti")  # no lower-casing: the backend analyzes
    assert parse_query("cc:us kind:B2 lang:en fam:12345 an:US2020123456") == And((
        t("us", "cc"), t("B2", "kind"), t("en", "lang"), t("12345", "fam"), t("US2020123456", "an"),
    ))


def test_cjk_text_is_a_term() -> None:
    assert parse_query("ti:放射治疗") == t("放射治疗", "ti")
    assert parse_query("放射治疗 装置") == And((t("放射治疗"), t("装置")))
    assert parse_query("ab:\"医用 放射\"") == Phrase("ab", "医用 放射")
    assert parse_query("ti:放射治疗\u3000装置") == And((t("放射治疗", "ti"), t("装置")))  # ideographic space


def test_phrases() -> None:
    assert parse_query('"fuel cell"') == Phrase(None, "fuel cell")
    assert parse_query('ti:"fuel cell" stack') == And((Phrase("ti", "fuel cell"), t("stack")))
    assert parse_query(r'"the \"best\" cell"') == Phrase(None, 'the "best" cell')
    assert parse_query(r'"back\\slash"') == Phrase(None, "back\\slash")
    assert parse_query('"a (b) [c] AND d*"') == Phrase(None, "a (b) [c] AND d*")  # nothing special inside
    assert parse_query('pa:"Toyota Jidosha"') == Phrase("pa", "Toyota Jidosha")
    assert parse_query('"a""b"') == And((Phrase(None, "a"), Phrase(None, "b")))


def test_prefixes() -> None:
    assert parse_query("wire*") == Prefix(None, "wire")
    assert parse_query("ti:wire*") == Prefix("ti", "wire")
    assert parse_query("ipc:H02J50*") == Prefix("ipc", "H02J50")
    assert parse_query("pn:US1164*") == Prefix("pn", "US1164")
    assert parse_query("ti:放射*") == Prefix("ti", "放射")
    assert parse_query(r"wire\*") == t("wire*")  # an escaped star is literal
    assert parse_query(r"what\?") == t("what?")


def test_match_all() -> None:
    assert parse_query("*") == MatchAll()
    assert parse_query("*:*") == MatchAll()
    assert parse_query(" * ") == MatchAll()
    assert parse_query("* AND pd:2021") == Range("pd", "2021-01-01", "2021-12-31")
    assert parse_query("a OR *") == MatchAll()
    assert parse_query("NOT *") == Not(MatchAll())


def test_default_fields_expand_field_less_terms() -> None:
    assert parse_query("a", default_fields=("ti", "abstract")) == Or((t("a", "ti"), t("a", "ab")))
    assert parse_query("a", default_fields="title") == t("a", "ti")
    assert parse_query('"x y" ab:z w*', default_fields=["ti", "cl"]) == And((
        Or((Phrase("ti", "x y"), Phrase("cl", "x y"))), t("z", "ab"), Or((Prefix("ti", "w"), Prefix("cl", "w"))),
    ))
    assert parse_query("all:a", default_fields=["ti"]) == t("a", "ti")
    for bad in (["nope"], ["pd"], ["all"]):
        assert "invalid default field" in syntax_error("a", default_fields=bad).message


# --- dates ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, first, last", [
    ("2020", "2020-01-01", "2020-12-31"),
    ("2020-05", "2020-05-01", "2020-05-31"),
    ("2024-02", "2024-02-01", "2024-02-29"),
    ("2023-02", "2023-02-01", "2023-02-28"),
    ("2020-1", "2020-01-01", "2020-01-31"),
    ("2020-01-07", "2020-01-07", "2020-01-07"),
    ("20200107", "2020-01-07", "2020-01-07"),
    ("2020/01/07", "2020-01-07", "2020-01-07"),
    ("2020.1.7", "2020-01-07", "2020-01-07"),
    ("２０２０", "2020-01-01", "2020-12-31"),  # full-width digits, as typed with a CJK input method
])
def test_date_forms(text: str, first: str, last: str) -> None:
    assert date_period(text) == (date.fromisoformat(first), date.fromisoformat(last))
    assert parse_query(f"pd:{text}") == Range("pd", first, last)
    assert parse_query(f"ad:[{text} TO {text}]") == Range("ad", first, last)


@pytest.mark.parametrize("text", ["2021-02-30", "2021-13", "2021-00-10", "20211301", "0000", "202101", "21",
                                  "2021-01-01-01", "2021-01/01", "yesterday"])
def test_invalid_dates(text: str) -> None:
    assert date_period(text) is None
    err = syntax_error(f"pd:{text}")
    assert err.position == 3 and f"invalid date `{text}`" in err.message


@pytest.mark.parametrize("query, expected", [
    ("pd:[2020-01-01 TO 2024-12-31]", Range("pd", "2020-01-01", "2024-12-31", True, True)),
    ("pd:[2020 TO 2024]", Range("pd", "2020-01-01", "2024-12-31", True, True)),
    ("pd:[20200101 TO 20241231]", Range("pd", "2020-01-01", "2024-12-31", True, True)),
    ("pd:[2020-03 TO 2020-04]", Range("pd", "2020-03-01", "2020-04-30", True, True)),
    # exclusive ends round like Elasticsearch date math: `{2020` = after 2020, `2024}` = before 2024
    ("pd:{2020 TO 2024}", Range("pd", "2020-12-31", "2024-01-01", False, False)),
    ("pd:{2020-01-01 TO 2020-01-03}", Range("pd", "2020-01-01", "2020-01-03", False, False)),
    ("pd:[2020 TO 2024}", Range("pd", "2020-01-01", "2024-01-01", True, False)),
    ("pd:{2020 TO 2024]", Range("pd", "2020-12-31", "2024-12-31", False, True)),
    ("pd:[2020 TO *]", Range("pd", "2020-01-01", None)),
    ("pd:[* TO 2020]", Range("pd", None, "2020-12-31")),
    ("pd:[* TO *]", Range("pd", None, None)),
    ("pd:[2020 to 2021]", Range("pd", "2020-01-01", "2021-12-31")),
    ("pd:[ 2020   TO 2021 ]", Range("pd", "2020-01-01", "2021-12-31")),
    ("ad:[2019-06-01 TO 2019-06-30]", Range("ad", "2019-06-01", "2019-06-30")),
    ("pubdate:[2020 TO 2021]", Range("pd", "2020-01-01", "2021-12-31")),
    ("pd:2021", Range("pd", "2021-01-01", "2021-12-31")),
    ("pd:2021-03-04", Range("pd", "2021-03-04", "2021-03-04")),
    ('pd:"2021-03-04"', Range("pd", "2021-03-04", "2021-03-04")),
    # comparison shorthand, with or without the colon
    ("pd>=2020-01-01", Range("pd", "2020-01-01", None, True, True)),
    ("pd:>=2020", Range("pd", "2020-01-01", None, True, True)),
    ("pd>2020", Range("pd", "2020-12-31", None, False, True)),
    ("pd:>2020", Range("pd", "2020-12-31", None, False, True)),
    ("pd<2020", Range("pd", None, "2020-01-01", True, False)),
    ("pd<=2020-06", Range("pd", None, "2020-06-30", True, True)),
    ("ad:<= 2020", Range("ad", None, "2020-12-31", True, True)),
    ("PD>=20200101", Range("pd", "2020-01-01", None, True, True)),
    ("pd:(>=2020 AND <2022)", And((Range("pd", "2020-01-01", None), Range("pd", None, "2022-01-01", True, False)))),
    ("wireless pd>=2020", And((t("wireless"), Range("pd", "2020-01-01", None)))),
])
def test_ranges(query: str, expected: Range) -> None:
    assert parse_query(query) == expected


# --- errors ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("query, position, fragment", [
    ("", 0, "empty query"),
    ("   \t\n", 0, "empty query"),
    ("(a", 0, "unclosed `(`"),
    ("a AND (b OR (c)", 6, "unclosed `(`"),
    ("(", 0, "unclosed `(`"),
    ("a)", 1, "unmatched `)`"),
    ("(a))", 3, "unmatched `)`"),
    (")", 0, "unmatched `)`"),
    ("a ()", 2, "empty group"),
    ("ti:()", 3, "empty group"),
    ('"fuel cell', 0, "unclosed quote"),
    ('ti:"a" AND "b', 11, "unclosed quote"),
    ('""', 0, "empty phrase"),
    ('a "  "', 2, "empty phrase"),
    ("pd:[2020 TO 2024", 3, "unclosed range `[`"),
    ("pd:{2020 TO 2024 AND (a)", 3, "unclosed range `{`"),
    ("pd:[2020 TO (2024)]", 3, "unclosed range `[`"),
    ("a ] b", 2, "unexpected `]`"),
    ("a }", 2, "unexpected `}`"),
    ("pd:[2020 2024]", 3, "expected `[low TO high]`"),
    ("pd:[2020 TO]", 3, "expected `[low TO high]`"),
    ("pd:[2020 UNTIL 2024]", 3, "expected `[low TO high]`"),
    ("a AND", 2, "`AND` has nothing after it"),
    ("a OR", 2, "`OR` has nothing after it"),
    ("a &&", 2, "`&&` has nothing after it"),
    ("NOT", 0, "`NOT` has nothing after it"),
    ("a -", 2, "`-` has nothing after it"),
    ("(a AND) b", 3, "`AND` has nothing after it"),
    ("a AND OR b", 2, "`AND` has nothing after it"),
    ("AND a", 0, "`AND` has nothing before it"),
    ("OR a", 0, "`OR` has nothing before it"),
    ("(OR a)", 1, "`OR` has nothing before it"),
    ("|| a", 0, "`||` has nothing before it"),
    ("ti:", 0, "field `ti:` has nothing after it"),
    ("a ti:", 2, "field `ti:` has nothing after it"),
    ("ti: AND b", 0, "field `ti:` has nothing after it"),
    ("(ti:)", 1, "field `ti:` has nothing after it"),
    ("ti:ab:x", 3, "field `ab:` directly after field `ti:`"),
    ("foo:bar", 0, "unknown field `foo`"),
    ("wireless titel:charging", 9, "unknown field `titel`"),
    ("ti:[a TO b]", 3, "ranges only work on date fields (pd, ad), not on `ti`"),
    ("ipc:[A TO B]", 4, "ranges only work on date fields"),
    ("[2020 TO 2021]", 0, "not on a field-less term"),
    ("pd:[2024 TO 2020]", 4, "empty range"),
    ("pd:[2020-02 TO 2020-01-31]", 4, "empty range"),
    ("pd:{2020-01-01 TO 2020-01-01]", 4, "empty range"),
    ("pd:{2020 TO 2021}", None, None),  # not empty: 2020-12-31 < 2021-01-01 (checked below as valid)
    ("pd:[2020 TO 2021-13-01]", 12, "invalid date `2021-13-01`"),
    ("pd:[soon TO 2021]", 4, "invalid date `soon`"),
    ("pd:2020*", 7, "wildcards do not work on `pd`"),
    ("ad:wire?", 7, "`?` wildcards are not supported"),
    ("wi?e", 2, "`?` wildcards are not supported"),
    ("a wire? b", 6, "`?` wildcards are not supported"),
    ("wi*re", 2, "`*` is only supported at the end"),
    ("*less", 0, "`*` is only supported at the end"),
    ("wire**", 4, "`*` is only supported at the end"),
    ('"fuel cell"*', 11, "`*` alone is not a term"),
    ("ti:*", 3, "`*` alone is not a term"),
    ("ti>2020", 2, "comparisons only work on date fields (pd, ad), not on `ti`"),
    (">2020", 0, "comparisons only work on date fields"),
    ("pd>=", 2, "`>=` needs a date after it"),
    ("pd:> *", 3, "`>` needs a date after it"),
    ("pd:>(2020)", 3, "`>` needs a date after it"),
    ("pd>=2020-02-30", 4, "invalid date"),
])
def test_errors_say_what_and_where(query: str, position: int | None, fragment: str | None) -> None:
    if position is None:
        parse_query(query)
        return
    err = syntax_error(query)
    assert fragment in err.message, err.message
    assert err.position == position, (err.position, err.message)


def test_unknown_field_lists_valid_fields_and_suggests() -> None:
    err = syntax_error("titel:charging")
    assert "titel" in err.message
    for f in ALL_FIELDS:
        assert f in err.message
    assert any("did you mean `title:`" in h for h in err.hints)
    assert any("pa (applicant, assignee, as)" in h for h in err.hints)


def test_error_text_points_at_the_position() -> None:
    err = syntax_error("a AND (b")
    lines = str(err).splitlines()
    assert lines[0].startswith("invalid query at position 7: unclosed `(`")
    assert lines[1] == "  a AND (b"
    assert lines[2].index("^") == lines[1].index("(")


def test_nesting_depth_is_limited_not_a_crash() -> None:
    deep = "(" * (MAX_DEPTH // 2) + "a" + ")" * (MAX_DEPTH // 2)
    assert parse_query(deep) == t("a")
    assert "nested too deeply" in syntax_error("(" * 5000 + "a" + ")" * 5000).message
    assert "nested too deeply" in syntax_error("NOT " * 5000 + "a").message
    assert "nested too deeply" in syntax_error("-" * 5000 + "a").message
    long_flat = " OR ".join(f"w{i}" for i in range(MAX_TERMS))
    assert len(parse_query(long_flat).children) == MAX_TERMS  # type: ignore[union-attr]
    err = syntax_error(long_flat + " OR extra")
    assert "too many terms" in err.message and "MAX_TERMS" in err.message
    assert err.position == len(long_flat) + 4  # at the first term past the limit


def test_non_string_input_is_a_syntax_error() -> None:
    with pytest.raises(QuerySyntaxError):
        parse_query(None)  # type: ignore[arg-type]


# --- printing -------------------------------------------------------------------------------------------

ROUND_TRIP = [
    'ti:(wireless AND charging) AND ipc:H02J50* AND pd:[2020-01-01 TO 2024-12-31] AND pa:"Toyota"',
    "a OR b AND c", "(a OR b) AND NOT (c OR d)", "NOT (a AND b) OR c", "-a -b", "a && !b || c",
    'ti:"fuel \\"cell\\"" OR ab:"back\\\\slash"', "pn:US-11646472-B2", 'ipc:"H02J 50/10" cpc:Y02E60/50',
    "pd:{2020 TO 2024]", "pd>2020 ad<=2019-06", "pd:[* TO 2020}", "*", "ti:放射治疗 OR ab:放射*",
    r"\AND \-minus \!bang \(x\) 10\:30 a\&\&b wire\* what\?", "title:Wire* in:smith as:(sony OR canon)",
    "NOT *", r"\pd>2020 pn:\ US1\  title\:x", r"pn:a\ b ipc:\ H02J",
]


@pytest.mark.parametrize("query", ROUND_TRIP)
def test_format_round_trips(query: str) -> None:
    tree = parse_query(query)
    printed = format_query(tree)
    assert parse_query(printed) == tree, printed
    assert format_query(parse_query(printed)) == printed  # printing is stable


def test_format_output() -> None:
    assert format_query(parse_query("a OR b c")) == "a OR (b AND c)"
    assert format_query(parse_query("NOT (a OR b)")) == "NOT (a OR b)"
    assert format_query(parse_query("pd:2021")) == "pd:[2021-01-01 TO 2021-12-31]"
    assert format_query(parse_query("pd>2020")) == "pd:{2020-12-31 TO *]"
    assert format_query(parse_query('pa:"Toyota"')) == 'pa:"Toyota"'
    assert format_query(parse_query("ipc:H02J50*")) == "ipc:H02J50*"
    # trees built by hand print too, with structure kept by parentheses
    assert format_query(And((Or((t("a"), t("b"))), Or((t("c"), Not(t("d"))))))) == "(a OR b) AND (c OR NOT d)"
    assert format_query(Or((t("a"), Or((t("b"), t("c")))))) == "a OR (b OR c)"
    assert format_query(Term("ti", "two words")) == r"ti:two\ words"
    assert parse_query(format_query(Term("ti", "two words"))) == Term("ti", "two words")


# --- property-style: random input never raises anything but QuerySyntaxError ------------------------------

_PIECES = [
    "a", "b", "wire", "放射", "H02J50/10", "US-11646472-B2", "2020", "2020-01-01", "20201231", "2021-02-30",
    " ", " ", " ", "\t", "\u3000", "(", ")", '"', '\\"', "\\", "[", "]", "{", "}", "*", "?", ":", "-", "!", "&&",
    "||", "&", "|", "<", ">", ">=", "<=", "AND", "OR", "NOT", "TO", "and", "ti:", "pd:", "ad:", "ipc:", "pn:",
    "pa:", "all:", "foo:", "title:", "pd>", "*:*", "\x00", "é", "\ud7ff", "'", ",", "/", ".", "+", "~", "^",
]


def _mutate(rng: random.Random, query: str) -> str:
    """A valid query with a few characters inserted, deleted or replaced."""
    chars = list(query)
    for _ in range(rng.randrange(1, 4)):
        i = rng.randrange(len(chars) + 1)
        c = rng.choice('()"[]{}*?:-!&|<> \\aZ9放')
        if i < len(chars) and rng.random() < 0.5:
            chars[i] = c if rng.random() < 0.5 else ""
        else:
            chars.insert(i, c)
    return "".join(chars)


def _random_queries(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    queries = []
    for _ in range(count):
        if rng.random() < 0.3:
            queries.append(_mutate(rng, rng.choice(ROUND_TRIP)))
        elif rng.random() < 0.2:  # raw characters, including control and non-BMP ones
            queries.append("".join(chr(rng.choice([rng.randrange(32, 127), rng.randrange(0, 0x2FFFF)]))
                                   for _ in range(rng.randrange(0, 30))))
        else:
            queries.append("".join(rng.choice(_PIECES) for _ in range(rng.randrange(0, 14))))
    return queries


def test_random_garbage_only_raises_query_syntax_error_and_parses_round_trip() -> None:
    parsed = 0
    for query in _random_queries(seed=20240517, count=8000):
        try:
            tree = parse_query(query)
        except QuerySyntaxError as err:
            assert 0 <= err.position <= len(query), (query, err.position)
            assert err.message and err.query == query
            str(err)  # renders
            continue
        parsed += 1
        printed = format_query(tree)
        assert parse_query(printed) == tree, (query, printed)
    assert parsed > 500  # the generator exercises the success path too, not only errors


# --- real documents ---------------------------------------------------------------------------------------

def test_real_titles_ids_and_dates(patent_index: list[dict[str, str]]) -> None:
    """Titles (en, de, fr, zh, ja ...) as phrases, publication numbers as pn terms, dates as one-day ranges."""
    rows = [r for r in patent_index if r["doc_id"]]
    assert len(rows) > 100
    titled = 0
    for row in rows:
        doc_id = row["doc_id"]
        assert parse_query(f"pn:{doc_id}") == Term("pn", doc_id)
        if row["pub_date"]:
            day = date(int(row["pub_date"][:4]), int(row["pub_date"][4:6]), int(row["pub_date"][6:])).isoformat()
            assert parse_query(f"pd:{row['pub_date']}") == Range("pd", day, day)
        title = row["title"].strip()
        if not title:
            continue
        titled += 1
        quoted = '"' + title.replace("\\", "\\\\").replace('"', '\\"') + '"'
        tree = parse_query(f"ti:{quoted}")
        assert tree == Phrase("ti", title)
        assert parse_query(format_query(tree)) == tree
        try:  # the bare title is either a query or a clean syntax error, never a crash
            bare = parse_query(title)
        except QuerySyntaxError as err:
            assert 0 <= err.position <= len(title)
        else:
            assert parse_query(format_query(bare)) == bare
    assert titled > 50
