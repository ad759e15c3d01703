"""CLI for interest profiles, matching runs and feedback: `patentsift profile ...`, `match`, `feedback`.

Registered by the shell (patentsift/cli.py) with `register(app)`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from patentsift import cli_common

profile_app = typer.Typer(no_args_is_help=True, help="Interest profiles: add, list, show, validate, preview.")


def _shell() -> Any:
    return cli_common


@contextmanager
def _store() -> Iterator[Any]:
    """The system's match store (it opens its own transactions)."""
    yield _shell().STATE.system.match_store


@contextmanager
def _engine(store: Any, index: Any) -> Iterator[Any]:
    """The system's matching engine; without an embedding model only lexical/class signals count (a warning)."""
    shell = _shell()
    engine = shell.STATE.system.matching_engine()
    for note in shell.STATE.system.notes:
        shell.err.print(f"[yellow]warning:[/yellow] {escape(note)}")
    yield engine


def _validated(path: Path) -> list[Any]:
    """The profiles in FILE, validated against the index (seed patents must be there); exits on errors."""
    index = _shell().index_or_exit()
    return _load_file(path, index)


def _load_file(path: Path, index: Any | None) -> list[Any]:
    from subscribers.profiles import ProfileError, load_profiles_toml, validate_profile

    shell = _shell()
    if not path.exists():
        raise shell.fail(f"no such file: {path}", 2)
    try:
        known = (lambda pn: index.get(pn) is not None) if index is not None else None
        return [validate_profile(p, known) for p in load_profiles_toml(path)]
    except ProfileError as exc:
        raise shell.fail(str(exc), 2) from None


@profile_app.command("validate")
def profile_validate(file: Annotated[Path, typer.Argument(help="TOML file with [[profile]] tables.")]) -> None:
    """Check a profiles file (query syntax, classes, seed patents present in the index)."""
    for p in _validated(file):
        _shell().console.print(f"[green]ok[/green] {escape(p.name)}")


@profile_app.command("add")
def profile_add(file: Annotated[Path, typer.Argument(help="TOML file with [[profile]] tables.")]) -> None:
    """Validate and store (insert or update) the profiles in FILE."""
    shell = _shell()
    profiles = _validated(file)
    with _store() as store:
        for p in profiles:
            new = store.save_profile(p)
            shell.console.print(f"{'added' if new else 'updated'} profile {escape(p.name)}")


@profile_app.command("list")
def profile_list() -> None:
    """List stored profiles with their watermark and match counts."""
    shell = _shell()
    with _store() as store:
        profiles = store.profiles()
        if not profiles:
            shell.console.print("no profiles (add some with: patentsift profile add FILE.toml)")
        for p in profiles:
            n = len(store.matches(p.name))
            shell.console.print(f"[cyan]{escape(p.name)}[/cyan]  owner {escape(p.owner or '-')}  "
                                f"watermark {store.watermark(p.name)}  matches {n}  "
                                f"[dim]{escape(p.description[:60])}[/dim]")


@profile_app.command("show")
def profile_show(name: Annotated[str, typer.Argument()]) -> None:
    """Show one profile as TOML, with its state and the stored applicant names its watched applicants match."""
    from matching.store import UnknownProfile
    from subscribers.profiles import dump_profiles_toml

    shell = _shell()
    with _store() as store:
        try:
            state = store.state(name)
        except UnknownProfile as exc:
            raise shell.fail(str(exc)) from None
        judged = store.feedback(name)
    shell.console.print(escape(dump_profiles_toml([state.profile])), end="")
    shell.console.print(f"[dim]watermark {state.watermark}; vector {'yes' if state.vector is not None else 'no'}"
                        f" ({state.model_id or '-'}); feedback {sum(judged.values())} relevant, "
                        f"{len(judged) - sum(judged.values())} irrelevant[/dim]")
    if state.profile.applicants:
        _print_applicant_watch(shell, state.profile.applicants)


def _print_applicant_watch(shell: Any, applicants: list[str]) -> None:
    """Which stored applicant names (as the index normalizes them) each watched applicant matches."""
    from patentsift.applicant_watch import watch_matches

    watch = watch_matches(shell.index_or_exit(), applicants, cache=False)
    shell.console.print("applicant watch (stored names matched, documents):")
    for watched, names in watch.items():
        found = "; ".join(f"{v.value} ({v.count})" for v in names) or "no stored applicant name"
        shell.console.print(f"  {escape(watched)} -> {escape(found)}")


@profile_app.command("preview")
def profile_preview(
    name: Annotated[str, typer.Argument()],
    since: Annotated[str, typer.Option("--since", help="Publication date YYYY-MM-DD.")],
) -> None:
    """What NAME would have matched among documents published since a date (stores nothing)."""
    from matching.store import UnknownProfile

    shell = _shell()
    try:
        day = date.fromisoformat(since)
    except ValueError:
        raise shell.fail(f"--since must be a date like 2024-01-31, got {since!r}", 2) from None
    index = shell.index_or_exit()
    with _store() as store, _engine(store, index) as engine:
        try:
            matches = engine.preview(name, day)
        except UnknownProfile as exc:
            raise shell.fail(str(exc)) from None
    shell.console.print(f"[bold]{len(matches)}[/bold] documents would match {escape(name)} (not stored)")
    for n, m in enumerate(matches, 1):
        _print_match(n, m.doc.id, m.doc.title(), m.score, m.explanation.to_dict(), m.breakdown)


@profile_app.command("remove")
def profile_remove(name: Annotated[str, typer.Argument()]) -> None:
    """Delete a profile with its matches and feedback."""
    from matching.store import UnknownProfile

    shell = _shell()
    with _store() as store:
        try:
            store.delete_profile(name)
        except UnknownProfile as exc:
            raise shell.fail(str(exc)) from None
    shell.console.print(f"removed profile {escape(name)}")


def match(
    profile: Annotated[list[str] | None, typer.Option("--profile", "-p", help="Only this profile (repeatable).")] = None,
) -> None:
    """Match newly indexed documents against the profiles; store and print explained matches."""
    from matching.store import UnknownProfile

    shell = _shell()
    index = shell.index_or_exit()
    with _store() as store, _engine(store, index) as engine:
        try:
            report = engine.run(profile or None)
        except UnknownProfile as exc:
            raise shell.fail(str(exc)) from None
        stored = {i for ids in report.stored.values() for i in ids}
        titles = {m.doc.id: m.doc.title() for ms in report.matches.values() for m in ms}
        rows = [m for m in store.matches(ids=stored)] if stored else []
    shell.console.print(f"run {report.run_id}: {report.documents} new documents, {len(rows)} new matches")
    for note in report.notes:
        shell.err.print(f"[yellow]note:[/yellow] {escape(note)}")
    for name, why in report.failed.items():
        shell.err.print(f"[yellow]profile {escape(name)} skipped:[/yellow] {escape(why)}")
    for name in sorted({r.profile for r in rows}):
        shell.console.print(f"\n[bold]{escape(name)}[/bold]")
        for n, r in enumerate(sorted((r for r in rows if r.profile == name), key=lambda r: -r.score), 1):
            _print_match(n, r.doc_id, titles.get(r.doc_id, ""), r.score, r.explanation, r.breakdown, r.id)


def feedback(
    match_id: Annotated[int, typer.Argument(help="Match id (printed by `patentsift match`).")],
    verdict: Annotated[str, typer.Argument(help="relevant or irrelevant")],
    curator: Annotated[bool, typer.Option("--curator", help="Recorded as a curator's judgement.")] = False,
) -> None:
    """Mark a match relevant or irrelevant; the profile adapts on its next run."""
    from matching.store import UnknownMatch

    shell = _shell()
    if verdict not in ("relevant", "irrelevant"):
        raise shell.fail("verdict must be 'relevant' or 'irrelevant'", 2)
    with _store() as store:
        try:
            m = store.add_feedback(match_id, verdict == "relevant", "curator" if curator else "subscriber")
        except UnknownMatch as exc:
            raise shell.fail(str(exc)) from None
    shell.console.print(f"match {m.id} ({m.doc_id}) marked {verdict} for profile {escape(m.profile)}")


def _print_match(n: int, doc_id: str, title: str, score: float, explanation: dict[str, Any],
                 breakdown: dict[str, Any], match_id: int | None = None) -> None:
    from matching.explain import Explanation, describe

    shell = _shell()
    ref = f"#{match_id} " if match_id is not None else ""
    shell.console.print(f"{n:>3}. {ref}[cyan]{doc_id}[/cyan] {escape(title)} [dim]({score:.2f})[/dim]")
    for line in describe(Explanation.from_dict(explanation), breakdown):
        shell.console.print(f"      {shell.rich_snippet(line)}")


def register(app: typer.Typer) -> None:
    """Add `profile`, `match` and `feedback` to the main CLI."""
    app.add_typer(profile_app, name="profile")
    app.command("match")(match)
    app.command("feedback")(feedback)
