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
    proxy_headers: Annotated[bool, typer.Option(help="Trust X-Forwarded-Proto/For from the proxy.")] = True,
) -> None:
    """Serve the web application: search, documents, curation, subscriptions, and the /api."""
    import uvicorn

    from patentsift.config import ConfigError
    from patentsift.web.app import create_app

    shell = _shell()
    try:
        app = create_app(shell.STATE.cfg)
    except ConfigError as exc:
        raise shell.fail(str(exc), 2) from None
    uvicorn.run(app, host=host, port=port, proxy_headers=proxy_headers, forwarded_allow_ips="127.0.0.1")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
