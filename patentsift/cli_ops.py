"""Operations CLI: `patentsift run-once`, `patentsift scheduler`, `patentsift report`.

Registered by the shell (patentsift/cli.py) with `register(app)`.
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from patentsift import cli_common


def _shell() -> Any:
    return cli_common


def run_once(
    stage: Annotated[list[str] | None, typer.Option("--stage", help="Only these stages (harvest, match, curate, "
                                                    "deliver; repeatable).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable report.")] = False,
) -> None:
    """Run one full cycle now (harvest, match, curate, deliver): for running from cron instead of the scheduler."""
    from patentsift.pipeline import STAGES, CycleAlreadyRunning, run_cycle

    shell = _shell()
    bad = [s for s in stage or () if s not in STAGES]
    if bad:
        raise shell.fail(f"unknown stage(s) {', '.join(bad)}: use {', '.join(STAGES)}", 2)
    try:
        report = run_cycle(shell.STATE.cfg, stages=stage or STAGES)
    except CycleAlreadyRunning as exc:
        raise shell.fail(str(exc), 75) from None
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict(), ensure_ascii=False, indent=2) + "\n")
    else:
        shell.console.print(escape(report.summary()))
    if not report.ok:
        raise typer.Exit(1)


def scheduler() -> None:
    """Run the cycle on the cron of the config's schedule section in the foreground until SIGTERM/SIGINT (jobs persist in data_dir)."""
    import logging

    from patentsift.config import ConfigError
    from patentsift.scheduler import run_forever

    shell = _shell()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        run_forever(shell.STATE.cfg)
    except ConfigError as exc:
        raise shell.fail(str(exc), 2) from None
    shell.err.print("scheduler stopped")


def _day(value: str, flag: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _shell().fail(f"{flag} must be a date like 2026-01-31, got {value!r}", 2) from None


def report(
    from_: Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD (UTC).")],
    to: Annotated[str, typer.Option("--to", help="Last day (inclusive), YYYY-MM-DD.")],
    outlet: Annotated[str | None, typer.Option("--outlet", help="Only this outlet.")] = None,
    csv_path: Annotated[Path | None, typer.Option("--csv", help="Write the figures as CSV.")] = None,
    html_path: Annotated[Path | None, typer.Option("--html", help="Write an HTML report with SVG charts (the web "
                                                                  "report's charts).")] = None,
    lang: Annotated[str, typer.Option("--lang", help="Language of the HTML report: en or zh.")] = "en",
) -> None:
    """Work account for a period: harvested, matches, selected, digests sent/failed, unsubscribes."""
    from distribution.charts import render_html
    from distribution.i18n import LANGUAGES
    from distribution.reports import MEASURES, UnknownOutlet, build_report, write_csv

    shell = _shell()
    start, end = _day(from_, "--from"), _day(to, "--to")
    if end < start:
        raise shell.fail("--to is before --from", 2)
    if lang not in LANGUAGES:
        raise shell.fail(f"unknown --lang {lang!r}: use one of {', '.join(LANGUAGES)}", 2)
    cfg = shell.STATE.cfg
    with shell.STATE.system.database.begin() as session:
        try:
            rep = build_report(session, start, end, outlet=outlet, harvest_state=cfg.state_path)
        except UnknownOutlet as exc:
            raise shell.fail(str(exc), 2) from None
    if csv_path:
        write_csv(rep, csv_path)
    if html_path:
        html_path.write_text(render_html(rep, lang), encoding="utf-8")
    shell.console.print("level         name                          " + " ".join(f"{m:>12}" for m in MEASURES))
    for row in rep.rows:
        name = row.organization or row.outlet or "all"
        vals = " ".join(f"{'' if getattr(row.figures, m) is None else getattr(row.figures, m):>12}" for m in MEASURES)
        shell.console.print(f"{row.level:<13} {escape(name[:29]):<29} {vals}")
    for path in (csv_path, html_path):
        if path:
            shell.console.print(f"wrote {path}")


def register(app: typer.Typer) -> None:
    """Add `run-once`, `scheduler` and `report` to the main CLI."""
    app.command("run-once")(run_once)
    app.command("scheduler")(scheduler)
    app.command("report")(report)
