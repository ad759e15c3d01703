"""The FastAPI application: middleware, error handling, and every room's router (`create_app`)."""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from patentsift.config import Config, ConfigError, load_secret_key
from patentsift.web import auth
from patentsift.web.deps import templates
from patentsift.web.security import (
    LoginThrottle,
    SecurityHeadersMiddleware,
    TrustedProxyMiddleware,
    csrf_protect,
    parse_trusted_proxies,
)
from patentsift.web.sessions import ABSOLUTE_LIFETIME, SessionStore
from patentsift.wiring import System

log = logging.getLogger(__name__)

ROUTER_MODULES = [
    "patentsift.web.routes_search",
    "patentsift.web.routes_documents",
    "patentsift.web.api",
    "patentsift.web.routes_curation",
    "patentsift.web.routes_profiles",
    "patentsift.web.routes_subscriptions",
    "patentsift.web.routes_public",
    "patentsift.web.routes_reports",
    "patentsift.web.routes_directory",
]
SESSION_COOKIE = "patentsift_session"
SESSION_MAX_AGE = int(ABSOLUTE_LIFETIME.total_seconds())  # the cookie; the server-side row decides (sessions.py)
STATIC_DIR = Path(__file__).resolve().parent / "static"


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def create_app(cfg: Config, *, testing: bool = False) -> FastAPI:
    """The web app on `cfg`'s shared database and index. `testing`: session cookies are not marked Secure even
    when the configured base URL is https (TestClient speaks plain http)."""
    secret = load_secret_key(cfg)
    try:
        trusted_proxies = parse_trusted_proxies(cfg.trusted_proxies)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    system = System(cfg)
    db = system.database  # migrated before the first request

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        system.close()

    app = FastAPI(title="patentsift", summary="Patent search and dissemination", lifespan=lifespan,
                  dependencies=[Depends(csrf_protect)], docs_url=None, redoc_url=None,
                  openapi_url="/api/openapi.json")
    app.state.cfg, app.state.system, app.state.db, app.state.testing = cfg, system, db, testing
    app.state.login_throttle = LoginThrottle()
    app.state.sessions = SessionStore()
    https = cfg.smtp.base_url.startswith("https://") and not testing
    # added last = outermost: headers wrap every response, the session is there for every route; the proxy
    # headers (only from cfg.trusted_proxies) are applied before anything reads the client address or scheme
    app.add_middleware(SessionMiddleware, secret_key=secret, session_cookie=SESSION_COOKIE,
                       max_age=SESSION_MAX_AGE, same_site="lax", https_only=https)
    app.add_middleware(SecurityHeadersMiddleware)
    if trusted_proxies:
        app.add_middleware(TrustedProxyMiddleware, trusted=trusted_proxies)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    _error_handlers(app)
    _api_docs(app)
    app.include_router(auth.router)
    for name in ROUTER_MODULES:
        if not _module_exists(name):
            log.warning("web: router module %s is not there; its pages are left out", name)
            continue
        app.include_router(importlib.import_module(name).router)
    return app


API_DOCS = "/api/docs"
_METHODS = ("get", "post", "put", "patch", "delete")


def schema_label(schema: dict[str, Any]) -> str:
    """A short type for an OpenAPI schema: `SearchOut`, `string[]`, `integer | null`, `object`."""
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if "anyOf" in schema or "oneOf" in schema:
        return " | ".join(schema_label(s) for s in schema.get("anyOf", schema.get("oneOf", [])))
    kind = schema.get("type", "object")
    if kind == "array":
        return schema_label(schema.get("items", {})) + "[]"
    if kind == "object" and "additionalProperties" in schema and isinstance(schema["additionalProperties"], dict):
        return f"{{string: {schema_label(schema['additionalProperties'])}}}"
    return str(kind) + (f" ({schema['format']})" if "format" in schema else "")


def api_docs_context(spec: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI document as the built-in docs page shows it: operations by tag, then the schemas."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for path, item in spec.get("paths", {}).items():
        for method in _METHODS:
            op = item.get(method)
            if op is None:
                continue
            body = op.get("requestBody", {}).get("content", {})
            params = [{"name": p["name"], "in": p["in"], "required": p.get("required", False),
                       "type": schema_label(p.get("schema", {})),
                       "description": p.get("description") or p.get("schema", {}).get("description", "")}
                      for p in op.get("parameters", [])]
            responses = [{"status": code, "description": r.get("description", ""),
                          "type": ", ".join(schema_label(c.get("schema", {})) for c in r.get("content", {}).values())}
                         for code, r in op.get("responses", {}).items()]
            groups.setdefault((op.get("tags") or ["api"])[0], []).append({
                "id": f"{method}-{path}".replace("/", "-").replace("{", "").replace("}", ""),
                "method": method.upper(), "path": path, "summary": op.get("summary", ""),
                "description": op.get("description", ""), "parameters": params, "responses": responses,
                "body": ", ".join(f"{kind}: {schema_label(c.get('schema', {}))}" for kind, c in body.items())})
    schemas = []
    for name, schema in sorted(spec.get("components", {}).get("schemas", {}).items()):
        required = set(schema.get("required", []))
        schemas.append({"name": name, "description": schema.get("description", ""),
                        "fields": [{"name": f, "type": schema_label(s), "required": f in required}
                                   for f, s in schema.get("properties", {}).items()],
                        "enum": schema.get("enum")})
    return {"info": spec.get("info", {}), "groups": groups, "schemas": schemas}


def _api_docs(app: FastAPI) -> None:
    """The API documentation at /api/docs: rendered on the server from the OpenAPI document, no script and
    nothing from another site (works offline and under the app's CSP; FastAPI's Swagger UI loads a CDN)."""

    @app.get(API_DOCS, include_in_schema=False)
    def api_docs(request: Request) -> Response:
        with request.app.state.system.database.begin() as session:
            try:  # public like /api/openapi.json; a logged-in user gets the navigation bar
                auth.current_user(request, session)
            except auth.LoginRequired:
                pass
        return templates.TemplateResponse(request, "api_docs.html", {
            "openapi_url": app.openapi_url, **api_docs_context(app.openapi())})


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if isinstance(exc, auth.LoginRequired) and not auth.is_api(request):
            return auth.login_redirect(request)
        if auth.is_api(request):
            return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        return templates.TemplateResponse(request, "error.html", {"status": exc.status_code, "message": exc.detail},
                                          status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(OverflowError)
    @app.exception_handler(DataError)
    async def out_of_range_id(request: Request, exc: Exception) -> Response:
        """An id beyond what the database can hold (e.g. 2**63) names no object: 404, like any unknown id."""
        return await http_error(request, StarletteHTTPException(404, "not found"))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        message = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors)
        if auth.is_api(request):
            return JSONResponse({"error": message, "details": errors}, status_code=422)
        return templates.TemplateResponse(request, "error.html", {"status": 422, "message": message},
                                          status_code=422)
