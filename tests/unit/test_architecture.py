"""Guard rails of the structure: each room imports only rooms below it, and no module names another room's
module or table as a string (an importlib path, a Scrapy setting, raw SQL)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# what each room may import (besides itself); the shell (patentsift/) may import every room
ALLOWED: dict[str, set[str]] = {
    "db": set(),
    "index": set(),
    "harvest": {"index"},
    "subscribers": {"db", "index"},
    "matching": {"db", "index", "subscribers"},
    "distribution": {"db", "index", "subscribers", "matching"},
}
ROOMS = set(ALLOWED) | {"patentsift"}


def _modules(room: str) -> list[Path]:
    return sorted(p for p in (ROOT / room).rglob("*.py") if "migrations" not in p.parts)


def _imports(tree: ast.AST) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
    return out & ROOMS


def _is_module(dotted: str) -> bool:
    """Whether `a.b.c...` names a module or package of the project (its longest importable prefix)."""
    parts = re.split(r"[.:]", dotted)
    for n in range(len(parts), 1, -1):
        base = ROOT.joinpath(*parts[:n])
        if base.with_suffix(".py").is_file() or (base / "__init__.py").is_file():
            return True
    return False


def _tables(room: str) -> set[str]:
    names: set[str] = set()
    for path in _modules(room):
        names.update(re.findall(r'__tablename__\s*=\s*"([a-z_]+)"', path.read_text(encoding="utf-8")))
    return names


@pytest.mark.parametrize("room", sorted(ALLOWED))
def test_rooms_import_only_rooms_below(room: str) -> None:
    bad = []
    for path in _modules(room):
        for other in _imports(ast.parse(path.read_text(encoding="utf-8"))) - ALLOWED[room] - {room}:
            bad.append(f"{path.relative_to(ROOT)} imports {other}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("room", sorted(ALLOWED))
def test_no_room_names_another_rooms_module_or_table_as_a_string(room: str) -> None:
    others = ROOMS - {room}
    module_string = re.compile(rf"^({'|'.join(sorted(others))})\.[a-z_]+")
    tables = set().union(*(_tables(o) for o in ALLOWED if o != room)) - _tables(room)
    bad = []
    for path in _modules(room):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                      if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                      and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)) or id(node) in docstrings:
                continue
            m = module_string.match(node.value)
            if m and _is_module(node.value):
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno} names {node.value!r}")
            for table in tables:
                if re.search(rf"\b{table}\b", node.value):
                    bad.append(f"{path.relative_to(ROOT)}:{node.lineno} names table {table!r}")
    assert not bad, "\n".join(bad)


BUILDERS = {"create_engine", "MatchStore", "MatchingEngine", "load_embedder", "EmbeddedIndex", "ElasticIndex",
            "open_index"}
# the one place each is built: the wiring module, the db room's engine factory, and the harvest room's factory
# for a bare embedded index (`python -m harvest.crawl --index DIR`)
BUILD_SITES = {"patentsift/wiring.py", "db/engine.py", "harvest/crawl.py"}


def test_the_shell_alone_builds_the_system() -> None:
    """Engines, indexes, match stores, embedders and matching engines are built in patentsift/wiring.py only."""
    bad = []
    for room in sorted(ROOMS):
        for path in _modules(room):
            rel = str(path.relative_to(ROOT))
            if rel in BUILD_SITES:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in BUILDERS:
                    bad.append(f"{rel}:{node.lineno}: {node.func.id}(...)")
    assert not bad, "\n".join(bad)
