"""CLI for outlets, staff, organizations, contacts and subscriptions: `patentsift outlet|staff|org|contact|subscription`.
The `list` commands share their queries with the web app's lists (subscribers/directory.py).

Registered by the shell (patentsift/cli.py) with `register(app)`. Everything lives in the shared database
(`database_url`, else data_dir/patentsift.sqlite), migrated on open.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from sqlalchemy.orm import Session

from patentsift import cli_common

outlet_app = typer.Typer(no_args_is_help=True, help="Service outlets.")
staff_app = typer.Typer(no_args_is_help=True, help="Outlet staff (curators, admins).")
org_app = typer.Typer(no_args_is_help=True, help="Organizations an outlet serves.")
contact_app = typer.Typer(no_args_is_help=True, help="People at organizations who receive digests.")
subscription_app = typer.Typer(no_args_is_help=True, help="Subscriptions: double opt-in, pause, unsubscribe.")


def _shell() -> Any:
    return cli_common


def _secret() -> str:
    return _shell().STATE.system.secret


@contextmanager
def _session() -> Iterator[Session]:
    """A transaction on the shared database; subscriber errors become a message and an exit code."""
    from subscribers.service import NotFound, StateError, SubscriberError
    from subscribers.tokens import InvalidToken

    shell = _shell()
    try:
        with shell.STATE.system.database.begin() as s:
            yield s
    except (NotFound, StateError, InvalidToken) as exc:
        raise shell.fail(str(exc), 1) from None
    except SubscriberError as exc:
        raise shell.fail(str(exc), 2) from None


def _print(text: str) -> None:
    _shell().console.print(escape(text))


# --- outlets and staff --------------------------------------------------------------------------------------
@outlet_app.command("add")
def outlet_add(name: str, region: Annotated[str, typer.Option(help="Region served.")] = "") -> None:
    """Create a service outlet."""
    from subscribers.service import create_outlet

    with _session() as s:
        outlet = create_outlet(s, name, region)
        _print(f"outlet {outlet.id}: {outlet.name}")


@outlet_app.command("set")
def outlet_set(
    outlet: Annotated[str, typer.Argument(help="Outlet name or id.")],
    sender_name: Annotated[str | None, typer.Option(
        help="Display name in the digests' From header (empty: the outlet's name).")] = None,
    contact_address: Annotated[str | None, typer.Option(help="Contact address shown in the digests' footer.")]
    = None,
    footer_note: Annotated[str | None, typer.Option(help="A note shown at the end of the digests' footer.")] = None,
) -> None:
    """Set an outlet's identity in its digests and confirmation messages."""
    from subscribers.service import get_outlet, set_outlet_identity

    with _session() as s:
        o = set_outlet_identity(s, get_outlet(s, outlet), sender_name=sender_name, contact_address=contact_address,
                                footer_note=footer_note)
        _print(f"outlet {o.id}: {o.name}; sender {o.sender_name or o.name!r}; contact {o.contact_address!r}")


@outlet_app.command("list")
def outlet_list() -> None:
    from sqlalchemy import select

    from subscribers.models import Outlet

    with _session() as s:
        for o in s.scalars(select(Outlet).order_by(Outlet.id)):
            _print(f"{o.id}\t{o.name}\t{o.region}")


@staff_app.command("add")
def staff_add(
    email: str,
    outlet: Annotated[str, typer.Option(help="Outlet name or id.")],
    role: Annotated[str, typer.Option(help="admin or staff.")] = "staff",
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
) -> None:
    """Create a staff user (the password is prompted for, or read from stdin)."""
    from subscribers.service import create_staff, get_outlet

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    with _session() as s:
        user = create_staff(s, get_outlet(s, outlet).id, email, password, name=name, role=role)
        _print(f"staff {user.id}: {user.email} ({user.role}) at {user.outlet.name}")


@staff_app.command("list")
def staff_list(
    outlet: Annotated[str | None, typer.Option(help="Only this outlet's (name or id).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
) -> None:
    """List staff users (no password data): name, e-mail, outlet, role, active."""
    from subscribers.directory import staff_rows

    with _session() as s:
        rows = staff_rows(s, _outlet_ids(s, outlet))
    _list_out(rows, as_json, ("id", "email", "name", "outlet", "role", "active"))


def _outlet_ids(s: Session, outlet: str | None) -> frozenset[int] | None:
    from subscribers.service import get_outlet

    return frozenset({get_outlet(s, outlet).id}) if outlet else None


def _list_out(rows: list[dict[str, Any]], as_json: bool, columns: tuple[str, ...]) -> None:
    """Rows as JSON (every field; dates as ISO text) or as a table of `columns`."""
    console = _shell().console
    if as_json:
        console.print_json(json.dumps(rows, ensure_ascii=False, default=str))
        return
    table = Table(*columns)
    for r in rows:
        table.add_row(*(escape("yes" if r[c] is True else "no" if r[c] is False else str(r[c] if r[c] is not None
                                                                                       else "")) for c in columns))
    console.print(table)


# --- organizations and contacts -----------------------------------------------------------------------------
@org_app.command("add")
def org_add(name: str, outlet: Annotated[str, typer.Option(help="Outlet name or id.")]) -> None:
    """Create an organization served by an outlet."""
    from subscribers.service import create_organization, get_outlet

    with _session() as s:
        org = create_organization(s, get_outlet(s, outlet).id, name)
        _print(f"organization {org.id}: {org.name} (outlet {org.outlet.name})")


@contact_app.command("add")
def contact_add(
    email: str,
    org: Annotated[str, typer.Option(help="Organization name or id.")],
    language: Annotated[str, typer.Option(help="Digest language: zh or en.")] = "en",
    tz: Annotated[str, typer.Option("--tz", help="IANA time zone, e.g. Asia/Shanghai.")] = "UTC",
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    outlet: Annotated[str | None, typer.Option(help="Outlet, when the organization name is ambiguous.")] = None,
) -> None:
    """Add a contact to an organization."""
    from subscribers.service import add_contact, get_organization, get_outlet

    with _session() as s:
        outlet_id = get_outlet(s, outlet).id if outlet else None
        c = add_contact(s, get_organization(s, org, outlet_id).id, email, name=name, language=language,
                        timezone=tz)
        _print(f"contact {c.id}: {c.email} ({c.language}, {c.timezone}) at {c.organization.name}")


@org_app.command("list")
def org_list(
    outlet: Annotated[str | None, typer.Option(help="Only this outlet's (name or id).")] = None,
    match: Annotated[str, typer.Option(help="Only organizations whose name, or a contact's name or address, "
                                            "contains this.")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
) -> None:
    """List organizations with their outlet, number of contacts and of active subscriptions."""
    from subscribers.directory import organization_rows

    with _session() as s:
        rows = organization_rows(s, _outlet_ids(s, outlet), match.strip())
    _list_out(rows, as_json, ("id", "name", "outlet", "contacts", "active_subscriptions"))


@contact_app.command("list")
def contact_list(
    outlet: Annotated[str | None, typer.Option(help="Only this outlet's (name or id).")] = None,
    org: Annotated[str | None, typer.Option(help="Only this organization's (name or id).")] = None,
    match: Annotated[str, typer.Option(help="Only contacts whose name, address or organization contains this.")]
    = "",
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
) -> None:
    """List contacts: address, name, organization, language, time zone, subscriptions (active/all), flag."""
    from subscribers.directory import contact_rows
    from subscribers.service import get_organization

    with _session() as s:
        outlet_ids = _outlet_ids(s, outlet)
        rows = contact_rows(s, outlet_ids, match.strip())
        if org:
            org_id = get_organization(s, org, next(iter(outlet_ids)) if outlet_ids else None).id
            rows = [r for r in rows if r["organization_id"] == org_id]
    if not as_json:
        for r in rows:
            r["subscriptions"] = f"{r['active_subscriptions']}/{r['subscriptions']}"  # active/all
    _list_out(rows, as_json, ("id", "email", "name", "organization", "outlet", "language", "timezone",
                              "subscriptions", "flagged"))


@contact_app.command("unflag")
def contact_unflag(
    contact: Annotated[str, typer.Argument(help="Contact e-mail address or id.")],
    org: Annotated[str | None, typer.Option(help="Organization, when the contact's address is ambiguous.")] = None,
) -> None:
    """Clear a contact's delivery flag (set by a permanent SMTP failure): digests go to it again from the next
    run (`patentsift subscription list` shows flagged contacts)."""
    from subscribers.service import get_contact, get_organization, unflag_contact

    with _session() as s:
        org_id = get_organization(s, org).id if org else None
        c = get_contact(s, contact, org_id)
        reason = c.flag_reason
        unflag_contact(s, c.id)
        _print(f"contact {c.id}: {c.email} un-flagged" + (f" (was: {reason})" if reason else " (was not flagged)"))


# --- subscriptions ------------------------------------------------------------------------------------------
@subscription_app.command("add")
def subscription_add(
    contact: Annotated[str, typer.Option(help="Contact e-mail address or id.")],
    profile: Annotated[list[str], typer.Option(help="Matching profile name (repeatable).")],
    frequency: Annotated[str, typer.Option(help="daily, weekly, monthly or a 5-field cron expression.")] = "weekly",
    max_items: Annotated[int, typer.Option(help="At most this many patents per digest.")] = 20,
    format: Annotated[str, typer.Option("--format", help="html or text.")] = "html",
    auto_approve_above: Annotated[float | None, typer.Option(help="Skip curation for scores above this.")] = None,
    org: Annotated[str | None, typer.Option(help="Organization, when the contact's address is ambiguous.")] = None,
    send_when_empty: Annotated[bool, typer.Option(
        "--send-when-empty", help="Send a digest (\"nothing new\") even in a period with nothing approved.")] = False,
    mail: Annotated[bool, typer.Option("--mail/--no-mail",
                                       help="Mail the contact the confirmation link (double opt-in).")] = True,
) -> None:
    """Request a subscription (pending), mail the contact its confirmation link and print the token that
    confirms it (double opt-in: it is active once the contact has confirmed)."""
    from subscribers.service import get_contact, get_organization, subscribe

    secret = _secret()
    with _session() as s:
        org_id = get_organization(s, org).id if org else None
        sub, token = subscribe(s, secret, get_contact(s, contact, org_id).id, profile, frequency=frequency,
                               max_items=max_items, format=format, auto_approve_above=auto_approve_above,
                               send_when_empty=send_when_empty)
        sub_id = sub.id
        _print(f"subscription {sub.id}: {sub.status}, {', '.join(sub.profile_names)} ({sub.frequency}) "
               f"for {sub.contact.email}")
        _print(f"confirm with: patentsift subscription confirm {token}")
        _print(f"token: {token}")
    if mail:
        _mail_confirmation(sub_id)


def _mail_confirmation(sub_id: int) -> bool:
    """Mail a pending subscription's confirmation message (after its creation was committed)."""
    from distribution.confirmation import ConfirmationNotSent, send_confirmation

    settings = _shell().STATE.system.delivery_settings().smtp
    try:
        with _session() as s:
            msg = send_confirmation(s, sub_id, settings=settings, secret=_secret())
    except ConfirmationNotSent as exc:
        _print(f"warning: {exc}. The subscription stays pending; once mail works: "
               f"patentsift subscription resend-confirmation {sub_id}")
        return False
    _print(f"confirmation link mailed to {msg.recipient}")
    return True


@subscription_app.command("resend-confirmation")
def subscription_resend_confirmation(subscription_id: int) -> None:
    """Mail a pending subscription's confirmation link to its contact again (exit 3 when it could not be sent)."""
    if not _mail_confirmation(subscription_id):
        raise _shell().fail("the confirmation message was not sent", 3)


@subscription_app.command("set")
def subscription_set(
    subscription_id: int,
    send_when_empty: Annotated[bool | None, typer.Option(
        "--send-when-empty/--skip-when-empty",
        help="Send a digest (\"nothing new\") even when nothing was approved, or skip such periods.")] = None,
) -> None:
    """Change a subscription's options."""
    from subscribers.service import get_subscription, set_send_when_empty

    with _session() as s:
        if send_when_empty is not None:
            set_send_when_empty(s, subscription_id, send_when_empty)
        sub = get_subscription(s, subscription_id)
        _print(f"subscription {sub.id}: {sub.status}, send when empty: {'yes' if sub.send_when_empty else 'no'}")


@subscription_app.command("confirm")
def subscription_confirm(token: str) -> None:
    """Confirm a subscription (the double opt-in step): it becomes active."""
    from subscribers.service import confirm

    secret = _secret()
    with _session() as s:
        sub = confirm(s, secret, token, detail="cli")
        _print(f"subscription {sub.id}: {sub.status}")


@subscription_app.command("pause")
def subscription_pause(subscription_id: int) -> None:
    from subscribers.service import pause

    with _session() as s:
        _print(f"subscription {subscription_id}: {pause(s, subscription_id).status}")


@subscription_app.command("resume")
def subscription_resume(subscription_id: int) -> None:
    from subscribers.service import resume

    with _session() as s:
        _print(f"subscription {subscription_id}: {resume(s, subscription_id).status}")


@subscription_app.command("unsubscribe")
def subscription_unsubscribe(token: str) -> None:
    """Unsubscribe with an unsubscribe token (as in a digest's link); repeating it is harmless."""
    from subscribers.service import unsubscribe

    secret = _secret()
    with _session() as s:
        sub = unsubscribe(s, secret, token, via="cli")
        _print(f"subscription {sub.id}: {sub.status}")


@subscription_app.command("list")
def subscription_list(
    outlet: Annotated[str | None, typer.Option(help="Only this outlet's (name or id).")] = None,
    org: Annotated[str | None, typer.Option(help="Only this organization's (name or id).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
) -> None:
    from subscribers.service import describe, get_organization, get_outlet, list_subscriptions

    with _session() as s:
        outlet_id = get_outlet(s, outlet).id if outlet else None
        org_id = get_organization(s, org, outlet_id).id if org else None
        rows = [describe(sub) for sub in list_subscriptions(s, outlet_id=outlet_id, organization_id=org_id)]
    console = _shell().console
    if as_json:
        console.print_json(json.dumps(rows, ensure_ascii=False))
        return
    table = Table("id", "contact", "organization", "profiles", "frequency", "status")
    for r in rows:
        table.add_row(str(r["id"]), escape(r["contact"]), escape(r["organization"]), escape(", ".join(r["profiles"])),
                      escape(r["frequency"]), r["status"] + (" (flagged)" if r["flagged"] else ""))
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add the subscriber commands to the shell's app."""
    app.add_typer(outlet_app, name="outlet")
    app.add_typer(staff_app, name="staff")
    app.add_typer(org_app, name="org")
    app.add_typer(contact_app, name="contact")
    app.add_typer(subscription_app, name="subscription")
