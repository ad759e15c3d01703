"""CLI for curation and digests: `patentsift review ...` and `patentsift digest preview|send`.

Registered by the shell (patentsift/cli.py) with `register(app)`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from sqlalchemy.orm import Session

from patentsift import cli_common

review_app = typer.Typer(no_args_is_help=True, help="Curation queue: enqueue matches, approve, reject, annotate, pin.")
digest_app = typer.Typer(no_args_is_help=True, help="Digests: preview one, send every due one.")

ItemIds = Annotated[list[int], typer.Argument(help="Review item ids (several for a bulk decision).")]
Who = Annotated[str, typer.Option("--who", help="Curator (staff e-mail) recorded in the audit trail.")]
Note = Annotated[str | None, typer.Option("--note", help="Curator's note shown in the digest.")]


def _shell() -> Any:
    return cli_common


@contextmanager
def _session() -> Iterator[Session]:
    """A session in a transaction on the system's database, committed when the command's block ends."""
    with _shell().STATE.system.database.begin() as s:
        yield s


@contextmanager
def _store() -> Iterator[Any]:
    yield _shell().STATE.system.match_store


@review_app.command("enqueue")
def review_enqueue() -> None:
    """Queue new matches of every active subscription (auto-approving above its threshold)."""
    from distribution.curation import enqueue_new_matches

    with _session() as s, _store() as store:
        added = enqueue_new_matches(s, store)
        auto = sum(1 for i in added if i.decided_by == "auto")
        _shell().console.print(f"{len(added)} item(s) queued, {auto} auto-approved")


@review_app.command("list")
def review_list(subscription: Annotated[int | None, typer.Option(help="Only this subscription.")] = None,
                status: Annotated[str, typer.Option(help="pending | approved | rejected | all")] = "pending") -> None:
    """The review queue, best score first."""
    from distribution.curation import queue

    with _session() as s:
        items = queue(s, subscription, None if status == "all" else status)
        table = Table("id", "subscription", "profile", "document", "score", "status", "pinned", "note")
        for i in items:
            table.add_row(str(i.id), str(i.subscription_id), escape(i.profile_name), i.doc_id, f"{i.score:.2f}",
                          i.status, "yes" if i.pinned else "", escape(i.note or ""))
        _shell().console.print(table)


def _decide(item_ids: list[int], action: str, who: str, note: str | None) -> None:
    """Record a decision as the staff user `who`, on items of that user's outlet (any outlet for an admin)."""
    from sqlalchemy import select

    from distribution.curation import CurationError, decide, visible_subscription_ids
    from distribution.models import ReviewItem
    from subscribers.service import find_staff

    shell = _shell()
    with _session() as s, _store() as store:
        staff = find_staff(s, who)
        if staff is None or not staff.active:
            raise shell.fail(f"--who {who!r} is not an active staff user (patentsift staff list shows them)", 2)
        if staff.role != "admin":
            mine = set(s.scalars(select(ReviewItem.id).where(
                ReviewItem.id.in_(item_ids), ReviewItem.subscription_id.in_(
                    visible_subscription_ids({staff.outlet_id})))))
            others = [i for i in item_ids if i not in mine]
            if others:
                raise shell.fail(f"no review item(s) {', '.join(map(str, others))} in {staff.email}'s outlet", 1)
        try:
            items = decide(s, item_ids, action, staff.email, note, match_store=store)
        except CurationError as exc:
            raise shell.fail(str(exc), 1) from None
        shell.console.print(f"{action}: {len(items)} item(s)")


@review_app.command("approve")
def review_approve(item_ids: ItemIds, who: Who, note: Note = None) -> None:
    _decide(item_ids, "approve", who, note)


@review_app.command("reject")
def review_reject(item_ids: ItemIds, who: Who, note: Note = None) -> None:
    _decide(item_ids, "reject", who, note)


@review_app.command("annotate")
def review_annotate(item_ids: ItemIds, who: Who,
                    note: Annotated[str, typer.Option("--note", help="The note ('' clears it).")]) -> None:
    _decide(item_ids, "annotate", who, note)


@review_app.command("pin")
def review_pin(item_ids: ItemIds, who: Who) -> None:
    _decide(item_ids, "pin", who, None)


@review_app.command("unpin")
def review_unpin(item_ids: ItemIds, who: Who) -> None:
    _decide(item_ids, "unpin", who, None)


@digest_app.command("preview")
def digest_preview(subscription_id: int,
                   out: Annotated[Path, typer.Option("--out", help="Write the HTML here.")],
                   period: Annotated[str | None, typer.Option(help="Period key (default: the current one).")]
                   = None) -> None:
    """Render what the subscription's next digest would hold (approved, unsent items) as HTML; sends nothing."""
    from distribution.digest import build_digest
    from distribution.message import render_for
    from subscribers.service import NotFound, get_subscription, period_key

    shell = _shell()
    with _session() as s:
        try:
            sub = get_subscription(s, subscription_id)
        except NotFound as exc:
            raise shell.fail(str(exc), 1) from None
        pk = period or period_key(sub, datetime.now(UTC))
        digest = build_digest(s, sub, pk, shell.index_or_exit())
        settings = shell.STATE.system.delivery_settings()
        rendered = render_for(digest, sub, settings=settings.smtp, secret=settings.secret)
        out.write_text(rendered.html or "", encoding="utf-8")
        shell.console.print(f"{len(digest)} item(s), subject {escape(rendered.subject)!r} -> {escape(str(out))}")


@digest_app.command("send")
def digest_send(
    subscription: Annotated[list[int] | None, typer.Option(
        "--subscription", "-s", help="Send this subscription's digest for the current period now, due or not "
        "(e.g. a new subscription's first digest); repeatable.")] = None,
) -> None:
    """Send every due digest (and retry unfinished ones) by SMTP, exactly once per subscription and period;
    say why each other subscription got nothing."""
    from distribution.delivery import DeliveryHalted, deliver
    from patentsift.pipeline import skip_notes
    from subscribers.service import NotFound, get_subscription, period_key

    shell = _shell()
    system = shell.STATE.system
    now = datetime.now(UTC)
    with system.database.session() as s:  # not begin(): delivery commits its own steps
        pairs = None
        if subscription:
            try:
                subs = [get_subscription(s, i) for i in subscription]
            except NotFound as exc:
                raise shell.fail(str(exc), 1) from None
            pairs = [(sub, period_key(sub, now)) for sub in subs]
        try:
            report = deliver(s, now, index=shell.index_or_exit(), settings=system.delivery_settings(),
                             subscriptions=pairs)
        except DeliveryHalted as exc:
            raise shell.fail(f"delivery stopped: {exc}", 4) from None
        notes = skip_notes(s, now, report) if pairs is None else [
            f"subscription {k.split(':', 1)[0]} ({k.split(':', 1)[1]}): {r}" for k, r in report.reasons.items()]
    shell.console.print(f"sent {len(report.sent)}, failed permanently {len(report.failed_permanent)}, "
                        f"to retry {len(report.failed_transient)}, skipped {len(report.skipped)}")
    for line in notes:
        shell.console.print(f"  {escape(line)}")
    if report.failed_transient:
        raise typer.Exit(3)


def register(app: typer.Typer) -> None:
    app.add_typer(review_app, name="review")
    app.add_typer(digest_app, name="digest")
