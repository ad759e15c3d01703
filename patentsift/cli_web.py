"""`patentsift serve`: the web application (patentsift/web) under uvicorn.

Registered by the shell (patentsift/cli.py) with `register(app)`.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from patentsift import cli_common


def _shell() -> Any:
    return cli_common


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (put a TLS proxy in front for other hosts).")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    proxy_headers: Annotated[bool, typer.Option(
        help="Honor X-Forwarded-Proto/For, from the proxies listed in `trusted_proxies` only (default: none).")]
    = True,
) -> None:
    """Serve the web application: search, documents, curation, subscriptions, and the /api."""
    import uvicorn

    from patentsift.config import ConfigError
    from patentsift.web.app import create_app

    shell = _shell()
    cfg = shell.STATE.cfg
    if not proxy_headers:
        cfg.trusted_proxies = []
    try:
        app = create_app(cfg)
    except ConfigError as exc:
        raise shell.fail(str(exc), 2) from None
    # the app applies proxy headers itself, from cfg.trusted_proxies only (web/security.TrustedProxyMiddleware):
    # uvicorn's own handling would trust 127.0.0.1 (or $FORWARDED_ALLOW_IPS) behind our back
    uvicorn.run(app, host=host, port=port, proxy_headers=False)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
