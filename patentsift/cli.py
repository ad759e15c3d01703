"""The `patentsift` command line: harvest, search, show, stats, demo, index maintenance."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from patentsift import cli_common, cli_distribution, cli_matching, cli_ops, cli_subscribers, cli_web
from patentsift.cli_common import console, err, fail, index_or_exit, print_facets, print_results, progress
from patentsift.config import ConfigError

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__, pretty_exceptions_enable=False)
index_app = typer.Typer(no_args_is_help=True, help="Index maintenance.")
app.add_typer(index_app, name="index")


@app.callback()
def main_options(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="TOML config file.")] = None,
    backend: Annotated[str | None, typer.Option("--backend", "-b", help="embedded (default) or es.")] = None,
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Where the embedded index and state live.")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show the full traceback of an unexpected failure.")] = False,
) -> None:
    """patentsift: harvest newly published patents, index them, search and select."""
    cli_common.STATE.reset(config, backend, data_dir)
    cli_common.STATE.debug = debug


# --- harvest ------------------------------------------------------------------------------------------------
EXIT_OK = 0  # every document was stored (or skipped: sequence listings and other non-patent documents)
EXIT_FAILED = 1  # a source could not be harvested (missing path, failed download, unreachable listing, index down)
EXIT_USAGE = 2  # bad command line or configuration: nothing was run
EXIT_REJECTS = 3  # the harvest ran to the end but refused some documents (listed; `patentsift stats --rejects`)
SHOWN_REJECTS = 20


def harvest_exit_code(outcome: Any) -> int:
    """The harvest's exit code (README "Using it"): a failed source outranks rejected documents."""
    if outcome.failures:
        return EXIT_FAILED
    return EXIT_REJECTS if outcome.counts()["rejects"] else EXIT_OK


def _crawl_line(s: Any) -> str:
    return (f"{s.spider}: {s.files_fetched} file(s) fetched, {s.files_skipped} already harvested, "
            f"{s.files_failed} failed; {s.documents} document(s) parsed, {s.indexed} indexed, {s.skipped} skipped, "
            f"{s.rejects} rejected" + (f"; {s.disallowed} disallowed by robots.txt" if s.disallowed else ""))


@app.command()
def harvest(
    path: Annotated[list[Path] | None, typer.Option("--path", "-p", help="Bulk file, zip or directory on disk.")] = None,
    uspto: Annotated[list[str] | None, typer.Option("--uspto", help="USPTO bulk-data listing URL to crawl.")] = None,
    ep: Annotated[list[str] | None, typer.Option("--ep", help="EP publication-server listing URL to crawl.")] = None,
) -> None:
    """Harvest documents: the sources given (--path, --uspto, --ep), else every [harvest] source of the config
    (paths, uspto_urls, ep_urls). Exit code 0: all stored or skipped; 1: a source failed; 2: usage; 3: some
    documents were rejected."""
    from index.base import IndexError_
    from patentsift.wiring import harvest_jobs

    system = cli_common.STATE.system
    jobs = harvest_jobs(system.cfg, paths=path or (), uspto=uspto or (), ep=ep or ())
    if not jobs:
        raise fail("nothing to harvest: give --path, --uspto or --ep, or set [harvest] paths / uspto_urls / "
                   "ep_urls in the config", EXIT_USAGE)
    bars = progress()
    shown = 0

    def on_path(p: Path) -> Any:
        total = sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else p.stat().st_size
        bars.start()
        task = bars.add_task(p.name, total=total)
        return lambda done: bars.update(task, completed=done)

    def on_report(p: Path, report: Any) -> None:
        nonlocal shown
        bars.stop()
        console.print(escape(report.summary()))
        for r in report.rejects:
            if shown < SHOWN_REJECTS:
                console.print(f"  [yellow]rejected[/yellow] {escape(r.file)} #{r.position}: {escape(r.reason)}")
            shown += 1

    try:
        outcome = system.harvest(jobs, on_path=on_path, on_report=on_report)
    except IndexError_ as exc:
        bars.stop()
        raise fail(cli_common.explain_failure(exc), EXIT_FAILED) from None
    bars.stop()
    if shown > SHOWN_REJECTS:
        console.print(f"  ... {shown - SHOWN_REJECTS} more rejected (patentsift stats --rejects)")
    for summary in outcome.crawl_summaries:
        console.print(escape(_crawl_line(summary)))
        if summary.rejects:
            console.print(f"  {summary.rejects} rejected: patentsift stats --rejects lists them")
    for line in outcome.failures:
        err.print(f"[red]error:[/red] {escape(line)}")
    raise typer.Exit(harvest_exit_code(outcome))


# --- search ---------------------------------------------------------------------------------------------------
@app.command()
def search(
    query: Annotated[str, typer.Argument(help='Query, e.g. \'ti:(wireless AND charging) AND pd:[2020 TO 2024]\'')],
    limit: Annotated[int | None, typer.Option("--limit", "-n", min=1, max=1000,
                                              help="Results per page (default 10; with --format: 1000).")] = None,
    offset: Annotated[int, typer.Option("--offset", min=0)] = 0,
    cursor: Annotated[str | None, typer.Option("--cursor", help="Continue after a previous page (deep paging).")] = None,
    facets: Annotated[bool, typer.Option("--facets", help="Show facet counts.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    export_format: Annotated[str | None, typer.Option(
        "--format", help="Export the result set instead: csv or ris (its first --limit documents by relevance, "
                         "1000 at most; --offset, --cursor, --facets and --json do not apply).")] = None,
    sort: Annotated[str, typer.Option("--sort", help="Order: relevance, pd (publication date) or ad (filing "
                                                     "date); dates newest first.")] = "relevance",
) -> None:
    """Search the index with the fielded boolean query language (see README)."""
    from index.base import FACETS, SORTS, IndexError_
    from index.query.ast import QuerySyntaxError
    from patentsift.searching import EXPORT_FORMATS, collect_hits, export_text, hit_json, run_search

    if sort not in SORTS:
        raise fail(f"unknown --sort {sort!r}: use {', '.join(SORTS)}", 2)
    if export_format is not None:
        if export_format not in EXPORT_FORMATS:
            raise fail(f"unknown --format {export_format!r}: use {' or '.join(EXPORT_FORMATS)}", 2)
        try:
            hits, _ = collect_hits(index_or_exit(), query, sort=sort, **({"limit": limit} if limit else {}))
        except QuerySyntaxError as exc:
            raise fail(str(exc), 2) from None
        except IndexError_ as exc:
            raise fail(cli_common.explain_failure(exc)) from None
        sys.stdout.write(export_text(hits, export_format))
        return
    limit = limit or 10
    try:
        result = run_search(index_or_exit(), query, limit=limit, offset=offset, cursor=cursor,
                            facets=FACETS if facets else (), sort=sort)
    except QuerySyntaxError as exc:
        raise fail(str(exc), 2) from None
    except IndexError_ as exc:
        raise fail(cli_common.explain_failure(exc)) from None
    if as_json:
        out = {"total": result.total, "hits": [hit_json(h) for h in result.hits], "next_cursor": result.next_cursor}
        if facets:
            out["facets"] = {k: [{"value": f.value, "count": f.count} for f in v] for k, v in result.facets.items()}
        sys.stdout.write(json.dumps(out, ensure_ascii=False, indent=2) + "\n")
        return
    print_results(result, offset=offset)
    if facets:
        print_facets(result.facets)


# --- show ---------------------------------------------------------------------------------------------------
@app.command()
def show(
    pubno: Annotated[str, typer.Argument(help="Publication number in any spelling: US11646472, US-11646472-B2 ...")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
    full: Annotated[bool, typer.Option("--full", help="Print the whole description too.")] = False,
) -> None:
    """Show one document."""
    from patentsift.searching import find_document

    doc = find_document(index_or_exit(), pubno)
    if doc is None:
        raise fail(f"no document with publication number {pubno}")
    if as_json:
        sys.stdout.write(json.dumps(doc.to_dict(), ensure_ascii=False, indent=2) + "\n")
        return
    _print_document(doc, full)


def _print_document(doc: Any, full: bool) -> None:
    console.print(f"[bold cyan]{doc.id}[/bold cyan]  {escape(doc.title())}")
    for lang, title in doc.titles.items():
        if title != doc.title():
            console.print(f"  [dim]title ({lang}):[/dim] {escape(title)}")
    console.print(f"  published {doc.publication_date or '?'}; application {doc.application_number or '?'}"
                  f" filed {doc.application_date or '?'}; family {doc.family_id or '-'}")
    for label, parties in (("applicants", doc.applicants), ("inventors", doc.inventors)):
        if parties:
            names = "; ".join(f"{p.name}" + (f" ({p.country})" if p.country else "") for p in parties)
            console.print(f"  {label}: {escape(names)}")
    for label, classes in (("IPC", doc.ipc), ("CPC", doc.cpc), ("other", doc.other_classes)):
        if classes:
            console.print(f"  {label}: {escape(', '.join(c.display for c in classes))}")
    if doc.priorities:
        console.print("  priorities: " + ", ".join(f"{p.country} {p.number} {p.date or ''}" for p in doc.priorities))
    if doc.abstract():
        console.print(f"\n[bold]Abstract[/bold]\n{escape(doc.abstract())}")
    if doc.claims:
        console.print(f"\n[bold]Claims[/bold] ({len(doc.claims)}, "
                      f"{sum(c.independent for c in doc.claims)} independent)")
        for c in doc.claims if full else [c for c in doc.claims if c.independent][:3]:
            dep = f" [dim](depends on {', '.join(map(str, c.depends_on))})[/dim]" if c.depends_on else ""
            console.print(f"  {c.num}.{dep} {escape(c.text[:600])}")
    if doc.citations:
        pats = [c for c in doc.citations if c.kind == "patent"]
        console.print(f"\n[bold]Citations[/bold]: {len(pats)} patent, {len(doc.citations) - len(pats)} non-patent")
        for c in doc.citations[: None if full else 5]:
            console.print(f"  {escape(c.number or (c.text or '')[:100])} [dim]{escape(c.category or '')}[/dim]")
    if doc.description:
        text = doc.description if full else doc.description[:800] + ("..." if len(doc.description) > 800 else "")
        console.print(f"\n[bold]Description[/bold]\n{escape(text)}")
    if doc.provenance:
        p = doc.provenance
        console.print(f"\n[dim]source {p.source}: {escape(p.file)} #{p.position} @{p.offset}, fetched {p.fetched_at}, "
                      f"sha256 {(p.content_hash or '')[:16]}[/dim]")


# --- stats --------------------------------------------------------------------------------------------------
@app.command()
def stats(
    rejects: Annotated[bool, typer.Option("--rejects", help="List recorded rejects (and skipped documents).")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Index size, facet overview and harvest state; warns when the index lacks documents the harvest stored."""
    from harvest.verify import check
    from index.base import FACETS, SearchRequest
    from index.query.ast import MatchAll
    from index.sizing import size_advice

    cfg = cli_common.STATE.cfg
    index = index_or_exit()
    result = index.search(SearchRequest(query=MatchAll(), facets=FACETS, limit=0, highlight=False))
    total = index.count()
    files, recorded, integrity = [], [], None
    if cfg.state_path.exists():
        state = cli_common.STATE.system.harvest_state()
        try:
            files, recorded, integrity = state.files(), state.rejects(), check(index, state)
        finally:
            state.close()
    refused = [r for r in recorded if not r.skip]
    skipped = [r for r in recorded if r.skip]
    warning = integrity.warning() if integrity else None
    if warning:
        err.print(f"[yellow]warning:[/yellow] {escape(warning)}")
    advice = size_advice(cfg.backend, total)
    if advice:
        err.print(f"[yellow]warning:[/yellow] {escape(advice)}")
    if as_json:
        out = {
            "backend": cfg.backend, "documents": total, "harvested_files": len(files), "rejects": len(refused),
            "skipped": len(skipped),
            "harvested_documents": integrity.stored if integrity else 0,
            "missing_from_index": integrity.missing if integrity else 0,
            "unchecked_files": integrity.unrecorded_files if integrity else 0,
            "facets": {k: [{"value": f.value, "count": f.count} for f in v] for k, v in result.facets.items()},
        }
        if warning:
            out["warning"] = warning
        if advice:
            out["size_warning"] = advice
        sys.stdout.write(json.dumps(out, ensure_ascii=False, indent=2) + "\n")
        return
    stored = f"   harvested documents: {integrity.stored}" if integrity else ""
    if integrity and integrity.unrecorded_files:
        stored += f" (+ {integrity.unrecorded_files} older file(s): `patentsift index verify` reads them)"
    console.print(f"backend: {cfg.backend}   documents: [bold]{total}[/bold]{stored}   "
                  f"harvested files: {len(files)}   rejected: {len(refused)}   skipped: {len(skipped)}")
    print_facets(result.facets)
    if rejects:
        for r in refused:
            console.print(f"  [yellow]rejected[/yellow] {escape(r.file)} #{r.position} @{r.offset}: {escape(r.reason)}")
        for r in skipped:
            console.print(f"  [dim]skipped[/dim] {escape(r.file)} #{r.position} @{r.offset}: {escape(r.reason)}")


# --- index maintenance --------------------------------------------------------------------------------------
@index_app.command("rebuild")
def index_rebuild() -> None:
    """Reindex into a fresh index with the current mapping and swap it in (Elasticsearch: no downtime)."""
    from index.base import Rebuildable

    index = index_or_exit()
    if not isinstance(index, Rebuildable):
        raise fail("the embedded backend needs no rebuild (its schema is created on open)", 2)
    console.print(str(index.rebuild()))


@index_app.command("verify")
def index_verify(
    repair: Annotated[bool, typer.Option("--repair", help="Re-feed missing documents from the stored files; clear "
                                                          "files no longer on disk so the next harvest fetches them "
                                                          "again.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Compare the harvest state with the index: which harvested documents the index lacks, per file. Exit code 0:
    the index holds every harvested document (after the repair); 3: documents are missing."""
    from harvest.verify import verify
    from index.base import IndexError_

    cfg = cli_common.STATE.cfg
    index = index_or_exit()
    if not cfg.state_path.exists():
        console.print(f"no harvest state at {escape(str(cfg.state_path))}: nothing harvested, nothing to verify")
        return
    state = cli_common.STATE.system.harvest_state()
    try:
        report = verify(index, state, repair=repair)
    except IndexError_ as exc:
        raise fail(cli_common.explain_failure(exc)) from None
    finally:
        state.close()
    if as_json:
        out = {"backend": cfg.backend, "harvested_documents": report.stored, "missing": report.missing,
               "files": [{"key": g.key, "missing": len(g.missing), "path": g.path, "action": g.action}
                         for g in report.files],
               "unrecorded_files": report.unrecorded, "repaired": report.repaired, "restored": report.restored,
               "refetch": report.refetch, "still_missing": report.still_missing, "ok": report.ok}
        sys.stdout.write(json.dumps(out, ensure_ascii=False, indent=2) + "\n")
        raise typer.Exit(EXIT_OK if report.ok else EXIT_REJECTS)
    console.print(f"harvest state: {report.stored} documents stored; index ({cfg.backend}): "
                  f"{report.stored - len(report.missing)} of them present, {len(report.missing)} missing")
    if report.backfilled:
        console.print(f"  [dim]read {len(report.backfilled)} file(s) harvested before their documents were recorded"
                      " to learn them[/dim]")
    for key in report.unrecorded:
        console.print(f"  [yellow]not checked[/yellow] {escape(key)}: harvested before documents were recorded "
                      "and no longer on disk")
    for gap in report.files:
        if gap.action:
            note = gap.action
        elif gap.on_disk:
            note = "" if gap.path == gap.key else f"stored file {gap.path}"
        else:
            note = "the file is no longer on disk and must be fetched again (--repair clears it from the harvest state)"
        console.print(f"  [yellow]missing[/yellow] {len(gap.missing)} from {escape(gap.key)}"
                      + (f": {escape(note)}" if note else ""))
    if report.repaired:
        console.print(f"repair: {report.restored} of {len(report.missing)} missing documents restored")
        if report.refetch:
            console.print(f"{len(report.refetch)} file(s) cleared from the harvest state: the next "
                          "`patentsift harvest` of their source fetches them again")
        if report.still_missing:
            err.print(f"[yellow]warning:[/yellow] {len(report.still_missing)} documents still missing until "
                      "those files are harvested again")
    elif report.missing:
        console.print("run `patentsift index verify --repair` to re-feed them")
    raise typer.Exit(EXIT_OK if report.ok else EXIT_REJECTS)


@index_app.command("reembed")
def index_reembed(
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Documents embedded per batch.")] = 256,
) -> None:
    """Embed every indexed document with the configured model (after a model change), no re-harvest needed; the
    profiles' vectors follow on the next match run. Can run beside the service; rerun it if interrupted."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from matching.reembed import reembed

    system = cli_common.STATE.system
    embedder = system.embedder()
    if embedder is None:
        raise fail("; ".join(system.notes) or "no embedding model could be loaded", 1)
    index = index_or_exit()
    with Progress(TextColumn("[bold]re-embedding"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=err) as bars:
        task = bars.add_task("reembed", total=index.count())
        n = reembed(index, embedder, system.embedding_cache(), batch_size=batch_size,
                    progress=lambda done, total: bars.update(task, completed=done, total=total))
    console.print(f"{n} document(s) embedded with {embedder.model_id}")


# --- demo ---------------------------------------------------------------------------------------------------
@app.command()
def demo(
    keep: Annotated[bool, typer.Option("--keep", help="Keep the demo index (in the data dir's demo/ folder).")] = True,
) -> None:
    """Run the main job end to end on the shipped sample data: crawl a local copy of the USPTO bulk site -> index
    -> search, and print results."""
    from patentsift.demo import run_demo

    code = run_demo(cli_common.STATE.cfg, console)
    raise typer.Exit(code)


cli_matching.register(app)
cli_subscribers.register(app)
cli_distribution.register(app)
cli_ops.register(app)
cli_web.register(app)


def main() -> None:
    try:
        app()
    except ConfigError as exc:
        err.print(f"[red]configuration error:[/red] {escape(str(exc))}")
        sys.exit(2)
    except Exception as exc:  # one line saying what failed and what to do; the traceback with --debug
        if cli_common.STATE.debug:
            raise
        err.print(f"[red]error:[/red] {escape(cli_common.explain_failure(exc))}")
        sys.exit(1)
    finally:
        cli_common.STATE.close()


if __name__ == "__main__":  # `python -m patentsift.cli` would load this module twice (as __main__ and as
    sys.exit("run `python -m patentsift` or the `patentsift` command")  # patentsift.cli): refuse clearly
