"""Parse untrusted patent XML safely: no DTD or network access, no entity expansion, clear rejects.

Entities defined only in the (never fetched) external DTDs, such as `&mdash;` in ST.32/pap files, are mapped to
their characters so the text around them survives. Documents that declare parsed entities in an internal subset
(the shape of entity-expansion bombs and XXE) are rejected.
"""

from __future__ import annotations

import html.entities
import re

from lxml import etree

from harvest.raw import Reject

_PREDEFINED = {"amp", "lt", "gt", "quot", "apos"}
# Names used by USPTO/EPO DTDs (ISO 8879 sets) that HTML5 spells differently or lacks.
_EXTRA_ENTITIES = {
    "lsqb": "[", "rsqb": "]", "lcub": "{", "rcub": "}", "plus": "+", "equals": "=", "num": "#", "percnt": "%",
    "dollar": "$", "commat": "@", "excl": "!", "quest": "?", "verbar": "|", "lowbar": "_", "sol": "/",
    "bsol": "\\", "ast": "*", "horbar": "\u2015", "thinsp": "\u2009", "hyphen": "\u2010", "dash": "\u2010",
    "lE": "\u2266", "gE": "\u2267", "angst": "\u212b", "ohm": "\u2126", "mgr": "\u03bc", "agr": "\u03b1",
    "bgr": "\u03b2", "ggr": "\u03b3", "dgr": "\u03b4", "egr": "\u03b5", "lgr": "\u03bb", "pgr": "\u03c0",
    "sgr": "\u03c3", "tgr": "\u03c4", "thgr": "\u03b8", "ohgr": "\u03c9", "OHgr": "\u03a9", "Dgr": "\u0394",
    "cir": "\u25cb", "squ": "\u25a1", "lE_": "\u2266",
}
_ENTITY_REF = re.compile(rb"&([A-Za-z][A-Za-z0-9._-]*);")
_DOCTYPE = re.compile(rb"<!DOCTYPE\s+([^\s\[>]+)[^\[>]*(\[(.*?)\]\s*)?>", re.S)
_COMMENT = re.compile(rb"<!--.*?-->", re.S)
_UNDECLARED_PREFIX = re.compile(r"Namespace prefix (\w[\w.-]*) .*is not defined")
KNOWN_NAMESPACES = {
    "exch": "http://www.epo.org/exchange", "ops": "http://ops.epo.org", "ftxt": "http://www.epo.org/fulltext",
    "epo": "http://www.epo.org/exchange",
}
_ENTITY_DECL = re.compile(rb"<!ENTITY\s+(%\s+)?([^\s>]+)\s+(.*?)>", re.S)
_XML_DECL = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")
_PROLOG_TOKEN = re.compile(rb"(<!--.*?-->)|<[A-Za-z_]", re.S)
_ROOT_START = re.compile(rb"<[A-Za-z_]")
_FIRST_TAG = re.compile(rb"<(?![?!])")
_PROLOG_LIMIT = 1_000_000
_ROOT_NAME = re.compile(rb"<([A-Za-z_][\w.:-]*)")  # the first element of a prolog-less body
_BOM_WS = b" \t\r\n\x00\xef\xbb\xbf"
_PARSER_NOISE = re.compile(r"\s*\(<string>, line \d+\)\s*$")
_BLANK = re.compile(rb"[ \t\r\n\x00\xef\xbb\xbf]*\Z")

MAX_DOCUMENT_BYTES = 128 * 1024 * 1024


def _entity_char(name: str) -> str | None:
    if name in _EXTRA_ENTITIES:
        return _EXTRA_ENTITIES[name]
    return html.entities.html5.get(name + ";")


def _replace_entity(m: re.Match[bytes]) -> bytes:
    name = m.group(1).decode("ascii")
    if name in _PREDEFINED:
        return m.group(0)
    char = _entity_char(name)
    if char is None:
        return b"&amp;" + m.group(1) + b";"  # keep the name visible as text rather than lose it
    return "".join(f"&#{ord(c)};" for c in char).encode("ascii")


def doctype_name(data: bytes) -> str | None:
    """The root name the DOCTYPE declares (`us-patent-grant`, `PATDOC`, ...), if any."""
    m = _DOCTYPE.search(_prolog_without_comments(data[:65536]))
    return m.group(1).decode("ascii", "replace") if m else None


def check_internal_subset(data: bytes) -> None:
    """Reject parsed-entity declarations; allow unparsed (NDATA) image/math entities patent DTDs declare."""
    if data.find(b"<!DOCTYPE", 0, _PROLOG_LIMIT) < 0:
        return  # cheap pre-check: no DOCTYPE, no internal subset
    m = _DOCTYPE.search(_prolog_without_comments(data))
    if not m or not m.group(3):
        return
    for decl in _ENTITY_DECL.finditer(m.group(3)):
        is_param, name, body = decl.group(1), decl.group(2).decode("utf-8", "replace"), decl.group(3)
        if is_param:
            raise Reject(f"DTD declares parameter entity '{name}': entity declarations are not allowed")
        if re.search(rb"\bNDATA\b", body):
            continue
        if re.match(rb"\s*(SYSTEM|PUBLIC)\b", body):
            raise Reject(f"DTD declares external entity '{name}' (possible XXE): external entities are not fetched")
        raise Reject(f"DTD declares text entity '{name}' (possible entity-expansion bomb): entity expansion is not allowed")


def _prolog_without_comments(data: bytes) -> bytes:
    """The bytes before the root element (of the first MB), comments removed.

    Only the prolog is scanned: comments are skipped up to the first `<` + name-start character; a document with
    no such tag in its first MB is handled as a whole.
    """
    end = -1
    for m in _PROLOG_TOKEN.finditer(data, 0, _PROLOG_LIMIT):
        if m.group(1) is None:
            end = m.start()
            break
    if end < 0:
        no_comments = _COMMENT.sub(b"", data[:_PROLOG_LIMIT])
        root = _ROOT_START.search(no_comments)
        return no_comments[: root.start()] if root else no_comments
    prolog = data[:end]
    if b"<!--" in prolog:
        prolog = _COMMENT.sub(b"", prolog)
    root = _ROOT_START.search(prolog + data[end:end + 2])  # removing a comment may join `<` to a name
    return prolog[: root.start()]  # type: ignore[union-attr]  # found at `end` at the latest


def _strip_doctype(data: bytes) -> bytes:
    """Drop the prolog's comments and DOCTYPE (checked before), so no DTD processing can happen."""
    m = _FIRST_TAG.search(data, 0, _PROLOG_LIMIT)
    if not m:
        return data
    start = m.start()
    if b"<!" not in data[:start]:
        return data  # no comment or DOCTYPE in the prolog: nothing to drop
    prolog = _COMMENT.sub(b"", data[:start])
    prolog = _DOCTYPE.sub(b"", prolog)
    return prolog + data[start:]


def _declare_prefixes(body: bytes, prefixes: set[str]) -> bytes:
    """Declare namespace prefixes a document uses without declaring (DOCDB extracts use `exch:` bare)."""
    m = re.search(rb"<([A-Za-z_][\w.:-]*)", _strip_doctype(body)[:4096])
    if m is None:
        return body
    start = body.find(b"<" + m.group(1))
    if start < 0:
        return body
    end = start + 1 + len(m.group(1))
    decls = b"".join(
        f' xmlns:{p}="{KNOWN_NAMESPACES.get(p, "urn:patentsift:undeclared:" + p)}"'.encode() for p in sorted(prefixes)
    )
    return body[:end] + decls + body[end:]


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False,
        remove_comments=True, remove_pis=True, recover=False, collect_ids=False,
    )


def _may_name_entities(body: bytes, look: int = 256) -> bool:
    """False when every `&` of `body` starts a character reference (`&#...;`): then no entity needs mapping. A look
    at each `&` (found by memchr) is cheaper than a regex scan of the whole document; past `look` of them, True."""
    find, starts = body.find, body.startswith
    at = find(b"&")
    for _ in range(look):
        if at < 0:
            return False
        if not starts(b"&#", at):
            return True
        at = find(b"&", at + 2)
    return True


def parse_xml(data: bytes) -> etree._Element:
    """Parse one XML document from bytes, or raise `Reject` with a reason a person can act on."""
    if _BLANK.match(data):  # nothing but whitespace, NULs and BOM bytes (matching stops at the first other byte)
        raise Reject("empty document")
    if len(data) > MAX_DOCUMENT_BYTES:
        raise Reject(f"document is {len(data)} bytes, over the {MAX_DOCUMENT_BYTES}-byte limit")
    check_internal_subset(data)
    body = _strip_doctype(data)
    if _may_name_entities(body) and _ENTITY_REF.search(body):  # most documents use numeric references only
        body = _ENTITY_REF.sub(_replace_entity, body)
    declared = _XML_DECL.match(body)
    if declared and declared.group(1).lower() in (b"utf-8", b"utf8") and not body.isascii():
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Reject(f"declared UTF-8 but byte {exc.start} is not valid UTF-8 (wrong encoding?)") from None
    try:
        root = etree.fromstring(body, _parser())
    except etree.XMLSyntaxError as exc:
        undeclared = {m.group(1) for e in exc.error_log for m in [_UNDECLARED_PREFIX.search(e.message)] if m}
        if not undeclared:
            raise Reject(syntax_reason(body, exc)) from None
        try:
            root = etree.fromstring(_declare_prefixes(body, undeclared), _parser())
        except etree.XMLSyntaxError as exc2:
            raise Reject(syntax_reason(body, exc2)) from None
    if root is None:
        raise Reject("no root element")
    return root


def syntax_reason(data: bytes, exc: etree.XMLSyntaxError) -> str:
    """Why a document does not parse, for people: a cut file says so; lxml's `(<string>, line N)` is dropped."""
    head = data.lstrip(_BOM_WS)
    if not head.startswith(b"<") or head.startswith(b"</"):
        return "truncated: the file starts inside a document"
    root = _ROOT_NAME.search(_strip_doctype(data))
    tail = data.rstrip(_BOM_WS)
    if root and not (tail.endswith(b"</" + root.group(1) + b">") or tail.endswith(b"/>")):
        return "truncated: the file ends inside a document"
    return f"malformed XML: {_PARSER_NOISE.sub('', str(exc))}"


def collapse_ws(text: str) -> str:
    """`text` with each whitespace run made one space and the ends stripped (`re.sub(r"\\s+", " ", text).strip()`).

    Fast paths, a few scans in C and no list of words: in printable text the only whitespace is the ASCII space
    (every other whitespace character is non-printable), so without a double space there is nothing to collapse.
    Longer ASCII text (known without a scan) has no whitespace but the space, the line break and the rare control
    characters of `_ASCII_RARE_WS`: without the latter, its line breaks become spaces and double spaces are halved
    until none is left (cheaper than `isprintable`'s look at each character, and than splitting into words).
    """
    if len(text) > 128 and text.isascii():
        if "\n" in text:
            text = text.replace("\n", " ")
        if not _has_rare_ascii_ws(text):
            while "  " in text:
                text = text.replace("  ", " ")
            return text.strip()
    elif text.isprintable() and "  " not in text:
        return text.strip()
    return " ".join(text.split())


_ASCII_RARE_WS = "\t\r\x0b\x0c\x1c\x1d\x1e\x1f"  # with " " and "\n": the ASCII characters str.split() splits on


def _has_rare_ascii_ws(text: str) -> bool:
    return ("\t" in text or "\r" in text or "\x0b" in text or "\x0c" in text or "\x1c" in text or "\x1d" in text
            or "\x1e" in text or "\x1f" in text)


def text_of(el: etree._Element | None, sep: str = "") -> str:
    """All text inside an element, whitespace collapsed."""
    if el is None:
        return ""
    if not len(el):  # a leaf: its own text is all there is
        return collapse_ws(el.text or "")
    return collapse_ws(sep.join(el.itertext()))
