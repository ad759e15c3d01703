"""Subscriber tables (prefix `sub_`): outlets and their staff, organizations, contacts, interest profiles,
subscriptions, consent.

Values are validated by subscribers/service.py; the CHECK constraints here are the database's last line.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from db import Base, UTCDateTime, utcnow

ROLES = ("admin", "staff")
LANGUAGES = ("zh", "en")
FORMATS = ("html", "text")
STATUSES = ("pending", "active", "paused", "unsubscribed")
CONSENT_KINDS = ("requested", "confirmed", "paused", "resumed", "unsubscribed")
FREQUENCIES = ("daily", "weekly", "monthly")  # or a 5-field cron expression


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Outlet(Base):
    """A service outlet (a patent office branch or information centre) that serves organizations. Its identity
    in the digests it sends: `sender_name` (the From display name; default: its name), `contact_address` and
    `footer_note` (the footer)."""

    __tablename__ = "sub_outlets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    region: Mapped[str] = mapped_column(String(200), default="")
    sender_name: Mapped[str] = mapped_column(String(200), default="", server_default="")
    contact_address: Mapped[str] = mapped_column(String(500), default="", server_default="")
    footer_note: Mapped[str] = mapped_column(Text, default="", server_default="")

    staff: Mapped[list[StaffUser]] = relationship(back_populates="outlet")
    organizations: Mapped[list[Organization]] = relationship(back_populates="outlet")


class StaffUser(Base):
    __tablename__ = "sub_staff"
    __table_args__ = (CheckConstraint(_in("role", ROLES), name="role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    outlet_id: Mapped[int] = mapped_column(ForeignKey("sub_outlets.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(16), default="staff")
    password_hash: Mapped[str] = mapped_column(String(255))  # argon2id, PHC string
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    outlet: Mapped[Outlet] = relationship(back_populates="staff")


class Organization(Base):
    """An enterprise (or institute) an outlet serves."""

    __tablename__ = "sub_organizations"
    __table_args__ = (UniqueConstraint("outlet_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    outlet_id: Mapped[int] = mapped_column(ForeignKey("sub_outlets.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    outlet: Mapped[Outlet] = relationship(back_populates="organizations")
    contacts: Mapped[list[Contact]] = relationship(back_populates="organization")


class Contact(Base):
    """A person at an organization who receives digests. `flagged`: a permanent delivery failure (hard bounce)."""

    __tablename__ = "sub_contacts"
    __table_args__ = (UniqueConstraint("organization_id", "email"), CheckConstraint(_in("language", LANGUAGES),
                                                                                    name="language"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("sub_organizations.id", ondelete="CASCADE"),
                                                 index=True)
    email: Mapped[str] = mapped_column(String(320), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    language: Mapped[str] = mapped_column(String(8), default="en")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")  # IANA name
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    flag_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    organization: Mapped[Organization] = relationship(back_populates="contacts")
    subscriptions: Mapped[list[Subscription]] = relationship(back_populates="contact")


class InterestProfile(Base):
    """An interest profile (what an enterprise wants to hear about) and the outlet that made it: `outlet_id` None
    is a service-wide profile (made from the command line), readable by every outlet, changed by administrators.
    `spec` holds the profile's fields (subscribers.profiles.Profile.to_dict, without outlet_id). matching/ keeps
    what it derives from a profile (vectors, calibration, watermark) in its own table, keyed by this id."""

    __tablename__ = "sub_profiles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    outlet_id: Mapped[int | None] = mapped_column(ForeignKey("sub_outlets.id", ondelete="CASCADE"), index=True,
                                                  nullable=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Subscription(Base):
    """A contact's standing order for digests of some matching profiles; active only after double opt-in."""

    __tablename__ = "sub_subscriptions"
    __table_args__ = (
        CheckConstraint(_in("status", STATUSES), name="status"),
        CheckConstraint(_in("format", FORMATS), name="format"),
        CheckConstraint("max_items > 0", name="max_items"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("sub_contacts.id", ondelete="CASCADE"), index=True)
    profile_names: Mapped[list[str]] = mapped_column(JSON, default=list)  # matching_profiles.name values
    frequency: Mapped[str] = mapped_column(String(120), default="weekly")  # daily|weekly|monthly|cron expr
    max_items: Mapped[int] = mapped_column(Integer, default=20)
    format: Mapped[str] = mapped_column(String(8), default="html")
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    auto_approve_above: Mapped[float | None] = mapped_column(Float, nullable=True)  # skip curation above this
    # a digest even when nothing new was approved (a short "nothing new this period" note)
    send_when_empty: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    confirmation_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)  # last mailed
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    contact: Mapped[Contact] = relationship(back_populates="subscriptions")
    consent_events: Mapped[list[ConsentEvent]] = relationship(back_populates="subscription",
                                                              order_by="ConsentEvent.id")


class ConsentEvent(Base):
    """The audit trail of a subscription's consent: who asked, confirmed, paused, resumed or left, and how."""

    __tablename__ = "sub_consent_events"
    __table_args__ = (CheckConstraint(_in("kind", CONSENT_KINDS), name="kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("sub_subscriptions.id", ondelete="CASCADE"),
                                                 index=True)
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    detail: Mapped[str] = mapped_column(String(200), default="")  # list-unsubscribe-post | link | cli | ...

    subscription: Mapped[Subscription] = relationship(back_populates="consent_events")
