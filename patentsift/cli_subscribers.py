"""CLI for outlets, staff, organizations, contacts and subscriptions: `patentsift outlet|staff|org|contact|subscription`.

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

outlet_app = typer.Typer(no_args_is_help=True, help="Service outlets.")
staff_app = typer.Typer(no_args_is_help=True, help="Outlet staff (curators, admins).")
org_app = typer.Typer(no_args_is_help=True, help="Organizations an outlet serves.")
contact_app = typer.Typer(no_args_is_help=True, help="People at organizations who receive digests.")
subscription_app = typer.Typer(no_args_is_help=True, help="Subscriptions: double opt-in, pause, unsubscribe.")


def _shell() -> Any:
    import patentsift.cli as shell  # imported late: the shell imports this module

    return shell


def _secret() -> str:
    from patentsift.config import load_secret_key

    return load_secret_key(_shell().STATE.cfg)


@contextmanager
def _session() -> Iterator[Session]:
    """A transaction on the shared database; subscriber errors become a message and an exit code."""
    from patentsift.db import open_database
    from subscribers.service import NotFound, StateError, SubscriberError
    from subscribers.tokens import InvalidToken

    shell = _shell()
    db = open_database(shell.STATE.cfg)
    try:
        with db.begin() as s:
            yield s
    except (NotFound, StateError, InvalidToken) as exc:
        raise shell.fail(str(exc), 1) from None
    except SubscriberError as exc:
        raise shell.fail(str(exc), 2) from None
    finally:
        db.close()


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
) -> None:
    """Request a subscription (pending) and print the token that confirms it (double opt-in)."""
    from subscribers.service import get_contact, get_organization, subscribe

    secret = _secret()
    with _session() as s:
        org_id = get_organization(s, org).id if org else None
        sub, token = subscribe(s, secret, get_contact(s, contact, org_id).id, profile, frequency=frequency,
                               max_items=max_items, format=format, auto_approve_above=auto_approve_above)
        _print(f"subscription {sub.id}: {sub.status}, {', '.join(sub.profile_names)} ({sub.frequency}) "
               f"for {sub.contact.email}")
        _print(f"confirm with: patentsift subscription confirm {token}")
        _print(f"token: {token}")


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
