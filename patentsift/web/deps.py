"""Request dependencies every route module uses: config, database session, index, templates."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from db import Database
from index.base import Index
from matching.embeddings import Embedder
from matching.store import MatchStore
from patentsift.config import Config
from patentsift.web.i18n import DEFAULT_LANGUAGE, LANGUAGES, negotiate, ntranslate, translate
from patentsift.web.security import CSRF_FIELD, csrf_token

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
_build_lock = threading.Lock()  # the app's System builds each part once, whichever request asks first


def get_cfg(request: Request) -> Config:
    return request.app.state.cfg


def get_db(request: Request) -> Database:
    return request.app.state.system.database


def get_session(request: Request) -> Iterator[Session]:
    """A session in a transaction on the shared database: committed after the route returns, rolled back if it
    raises (an HTTPException included)."""
    with request.app.state.system.database.begin() as session:
        yield session


def get_index(request: Request) -> Index:
    """The configured index, opened once per app on first use."""
    with _build_lock:
        return request.app.state.system.index


def get_match_store(request: Request) -> MatchStore:
    """The matching store on the app's database."""
    return request.app.state.system.match_store


def language(request: Request) -> str:
    """The UI language: the session's choice, else the browser's Accept-Language, else English."""
    chosen = request.session.get("lang") if "session" in request.scope else None
    if chosen in LANGUAGES:
        return str(chosen)
    return negotiate(request.headers.get("accept-language")) or DEFAULT_LANGUAGE


def _context(request: Request) -> dict[str, Any]:
    lang = language(request)
    return {
        "lang": lang,
        "languages": LANGUAGES,
        "t": lambda key, **values: translate(key, lang, **values),
        "tn": lambda key, n, **values: ntranslate(key, n, lang, **values),
        "user": getattr(request.state, "user", None),
        "csrf_token": csrf_token(request) if "session" in request.scope else "",
        "csrf_field": CSRF_FIELD,
    }


templates = Jinja2Templates(directory=TEMPLATE_DIR, context_processors=[_context])
"""Render with `templates.TemplateResponse(request, "name.html", {...})`; every template gets `t(key, **values)`,
`tn(key, n)` (the plural form for n, formatted), `lang`, `user` (when the route depends on current_user), `csrf_token`
and `csrf_field`."""


def get_embedder(request: Request) -> Embedder:
    """The app's embedding model, loaded on first use ("more like this", profile previews); 503 without one."""
    from fastapi import HTTPException

    with _build_lock:
        model = request.app.state.system.embedder()
    if model is None:
        raise HTTPException(503, "no embedding model is installed: similar documents are not available")
    return model
