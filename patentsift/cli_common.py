"""What every `patentsift` command module shares: the global options' state, the consoles, errors, the system.

The command modules (cli.py, cli_matching.py, cli_subscribers.py, cli_distribution.py, cli_ops.py, cli_web.py)
import this module; none imports another command module.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from patentsift.config import Config, ConfigError, load_config
from patentsift.wiring import System

console = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


@dataclass
class State:
    """The global options of one command line, and the system built from them (once)."""

    config_path: Path | None = None
    backend: str | None = None
    data_dir: Path | None = None
    _cfg: Config | None = None
    _system: System | None = field(default=None, repr=False)
    debug: bool = False  # --debug: let unexpected failures show their traceback

    @property
    def cfg(self) -> Config:
        if self._cfg is None:
            self._cfg = load_config(self.config_path, backend=self.backend, data_dir=self.data_dir)
        return self._cfg

    @property
    def system(self) -> System:
        if self._system is None:
            self._system = System(self.cfg)
        return self._system

    def reset(self, config_path: Path | None, backend: str | None, data_dir: Path | None) -> None:
        self.close()
        self.config_path, self.backend, self.data_dir, self._cfg = config_path, backend, data_dir, None

    def close(self) -> None:
        if self._system is not None:
            self._system.close()
            self._system = None


STATE = State()


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {escape(message)}")
    return typer.Exit(code)


def index_or_exit() -> Any:
    """The system's index; a configuration or connection problem ends the command with a one-line error."""
    from index.base import IndexError_

    try:
        return STATE.system.index
    except ConfigError as exc:
        raise fail(str(exc), 2) from None
    except IndexError_ as exc:
        raise fail(explain_failure(exc)) from None


def progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
        TimeRemainingColumn(), console=err, transient=False,
    )


_MARK = re.compile(r"<mark>(.*?)</mark>", re.S)


def rich_snippet(text: str) -> str:
    """Highlights arrive as HTML (escaped text, <mark> around matches): render them for the terminal."""
    parts = _MARK.split(text)  # even indexes: plain text, odd: marked
    return "".join(
        f"[bold yellow]{escape(html.unescape(p))}[/bold yellow]" if i % 2 else escape(html.unescape(p))
        for i, p in enumerate(parts)
    )


def print_results(result: Any, offset: int = 0) -> None:
    console.print(f"[bold]{result.total}[/bold] documents")
    for n, hit in enumerate(result.hits, start=offset + 1):
        doc = hit.document
        pd = doc.publication_date.isoformat() if doc.publication_date else "?"
        title = hit.highlights.get("ti", [html.escape(doc.title())])[0]
        console.print(f"{n:>3}. [cyan]{hit.id}[/cyan]  {pd}  {rich_snippet(title)}  [dim]({hit.score:.2f})[/dim]")
        who = "; ".join(doc.applicant_names()[:2])
        classes = " ".join(c.symbol for c in (doc.cpc or doc.ipc)[:3])
        if who or classes:
            console.print(f"     [dim]{escape(who)}  {escape(classes)}[/dim]")
        for fld in ("ab", "cl"):
            for snippet in hit.highlights.get(fld, [])[:1]:
                console.print(f"     {fld}: {rich_snippet(snippet)}")
    if result.next_cursor:
        console.print(f"[dim]more: --cursor {result.next_cursor}[/dim]")


def print_facets(facets: dict[str, Any]) -> None:
    for name, values in facets.items():
        if values:
            shown = ", ".join(f"{escape(str(v.value))} ({v.count})" for v in values[:10])
            console.print(f"[bold]{name}[/bold]: {shown}")


def explain_failure(exc: BaseException) -> str:
    """One line for an unexpected failure: what failed and what to do (the traceback is for --debug)."""
    import errno

    from sqlalchemy.exc import OperationalError, SQLAlchemyError

    from index.base import IndexError_

    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return f"the disk is full ({exc.filename or 'data directory'}): free space and run the command again"
    if isinstance(exc, PermissionError):
        return f"no permission to write {exc.filename}: check the data directory (--data-dir, PATENTSIFT_HOME)"
    if isinstance(exc, OSError):
        return f"{exc.strerror or first} ({exc.filename or type(exc).__name__}); run again with --debug for details"
    if "disk is full" in first or "No space left" in first:
        return f"{first}: the disk is full; free space and run the command again"
    if isinstance(exc, IndexError_):
        return f"the index failed: {first}"
    if isinstance(exc, OperationalError) and "full" in first.lower():
        return "the database disk is full: free space and run the command again"
    if isinstance(exc, SQLAlchemyError):
        return f"the database failed: {first} (check database_url / PATENTSIFT_DATABASE_URL); --debug for details"
    return f"{type(exc).__name__}: {first} (run again with --debug for the traceback)"
