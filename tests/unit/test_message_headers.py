"""Header safety of the messages patentsift mails (pure): hostile names, subjects and outlet identities, forced
past input validation, still give messages whose parsed headers are exactly the ones we wrote; and the
validation itself refuses control characters at input. Also: the signed URLs and feedback tokens."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest

from distribution import urls
from distribution.confirmation import confirmation_message
from distribution.delivery import SmtpSettings, message_id_for
from distribution.digest import Digest
from distribution.message import digest_message, header_text, message_bytes, subscriber_links
from distribution.render import RenderedDigest
from subscribers.service import InvalidText, check_text
from subscribers.tokens import InvalidToken, make_feedback_token, read_feedback_token, read_token

SECRET = "unit-test-secret-key-for-headers"
SETTINGS = SmtpSettings(from_address="digest@news.example.org", reply_to="help@news.example.org",
                        base_url="https://news.example.org/")
DIGEST_HEADERS = ["Subject", "From", "To", "Reply-To", "Date", "Message-ID", "List-Unsubscribe",
                  "List-Unsubscribe-Post", "Auto-Submitted", "MIME-Version", "Content-Type"]
HOSTILE = [
    "Evil\r\nBcc: victim@evil.example",
    "Evil\nReply-To: attacker@evil.example\n\nreplaced body",
    "Evil\rX-Injected: 1",
    "Evil\u2028Bcc: victim@evil.example",
    "Evil\x85Bcc: victim@evil.example",
    "Evil\x00\x1b[31m\tBcc: victim@evil.example",
    "恶意\r\nBcc: victim@evil.example",
]


def _subscription(name: str, *, outlet: str = "Shanghai outlet", sender: str = "", address: str = "",
                  language: str = "en") -> SimpleNamespace:
    """A subscription as the database could hold it if validation were bypassed (raw SQL, an old row)."""
    o = SimpleNamespace(name=outlet, sender_name=sender, contact_address=address, footer_note="")
    contact = SimpleNamespace(id=3, email="reader@example.com", name=name, language=language, flagged=False,
                              organization=SimpleNamespace(name="Acme", outlet=o))
    return SimpleNamespace(id=7, contact=contact, format="html", profile_names=["semis"], frequency="weekly",
                           status="pending")


def _words(text: str) -> list[str]:
    return header_text(text).split()


def _parse(data: bytes) -> EmailMessage:
    assert b"\r\n\r\n" in data
    head = data.split(b"\r\n\r\n", 1)[0]
    assert all(line[:1] in b" \t" or b":" in line for line in head.split(b"\r\n"))  # every line a header or
    assert b"\n" not in head.replace(b"\r\n", b"")  # a folded continuation; no bare LF or CR
    assert b"\r" not in head.replace(b"\r\n", b"")
    msg = message_from_bytes(data, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    assert not msg.defects, msg.defects
    return msg


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_names_and_subjects_cannot_inject_headers_into_a_digest(hostile: str) -> None:
    sub = _subscription(hostile, outlet=f"Outlet {hostile}", sender=f"Sender {hostile}",
                        address=f"Road {hostile}")
    digest = Digest(7, "weekly:2026-W48", "en", [])
    data = digest_message(sub, digest, settings=SETTINGS, secret=SECRET,
                          message_id=message_id_for(7, "weekly:2026-W48"), when=datetime(2026, 11, 30, tzinfo=UTC))
    msg = _parse(data)
    assert list(msg.keys()) == DIGEST_HEADERS
    assert msg["Bcc"] is None and msg["X-Injected"] is None
    assert msg["To"].addresses[0].addr_spec == "reader@example.com" and len(msg["To"].addresses) == 1
    assert msg["Reply-To"].addresses[0].addr_spec == "help@news.example.org" and len(msg["Reply-To"].addresses) == 1
    assert msg["From"].addresses[0].addr_spec == "digest@news.example.org"
    assert _words(msg["From"].addresses[0].display_name) == _words(f"Sender {hostile}")  # in its own header
    assert _words(msg["To"].addresses[0].display_name) == _words(hostile)
    assert "victim@evil.example" not in {a.addr_spec for h in ("From", "To", "Reply-To") for a in msg[h].addresses}
    # the body is the digest's (a name shows in it as text), not one a name tried to put there
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert msg.get_body(("plain",)).get_content().startswith("Your patent digest")

    rendered = RenderedDigest(f"Patent digest {hostile}", "text", None)
    plain = _parse(message_bytes(rendered, to="reader@example.com", to_name=hostile, settings=SETTINGS,
                                 message_id="<digest.7.x.abc@patentsift>",
                                 links=subscriber_links(SETTINGS, SECRET, 7), from_name=hostile))
    assert _words(plain["Subject"]) == _words(f"Patent digest {hostile}")
    assert plain["Bcc"] is None and plain["X-Injected"] is None and plain.get_content() == "text"


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_values_cannot_inject_headers_into_a_confirmation_message(hostile: str) -> None:
    for language in ("en", "zh"):
        sub = _subscription(hostile, outlet=f"Outlet {hostile}", sender=hostile, language=language)
        msg = _parse(confirmation_message(sub, settings=SETTINGS, secret=SECRET).data)
        assert list(msg.keys()) == ["Subject", "From", "To", "Reply-To", "Date", "Message-ID", "Auto-Submitted",
                                    "MIME-Version", "Content-Type"]
        assert msg["Bcc"] is None and msg["X-Injected"] is None
        assert [a.addr_spec for a in msg["To"].addresses] == ["reader@example.com"]


def test_headers_are_encoded_by_the_email_policy() -> None:
    sub = _subscription("张伟", outlet="上海知识产权信息服务中心", language="zh")
    rendered = RenderedDigest("专利快讯 — 2026年第48周：" + "很长的主题" * 20, "正文", "<p>正文</p>")
    links = subscriber_links(SETTINGS, SECRET, 7)
    data = message_bytes(rendered, to="reader@example.com", to_name="张伟", settings=SETTINGS,
                         message_id="<digest.7.x.abc@patentsift>", links=links, from_name="上海知识产权信息服务中心")
    head = data.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()  # non-ASCII as RFC 2047 encoded words
    assert all(len(line) <= 78 for line in head.split(b"\r\n") if not line.startswith(b"List-Unsubscribe:")), head
    msg = _parse(data)
    assert msg["Subject"] == rendered.subject and msg["To"].addresses[0].display_name == "张伟"
    assert msg["From"].addresses[0].display_name == "上海知识产权信息服务中心"
    # the one-click URL is neither folded nor encoded (mail clients POST to it as it stands)
    assert f"List-Unsubscribe: <{links.unsubscribe_url}>, <{links.unsubscribe_mailto}>".encode() in head
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert header_text(" a\r\nb\u2028c\x00 ") == "a  b c"
    conf = _parse(confirmation_message(sub, settings=SETTINGS, secret=SECRET).data)
    assert "上海知识产权信息服务中心" in conf["Subject"] and "请确认" in conf["Subject"]
    assert conf["From"].addresses[0].display_name == "上海知识产权信息服务中心"


@pytest.mark.parametrize("hostile", HOSTILE)
def test_input_validation_refuses_control_characters(hostile: str) -> None:
    with pytest.raises(InvalidText, match="control characters"):
        check_text(hostile, "the contact name")
    assert check_text("  Zhang Wei  ", "the contact name") == "Zhang Wei"
    assert check_text("line one\r\nline two", "the footer note", multiline=True) == "line one\r\nline two"
    with pytest.raises(InvalidText, match="too long"):
        check_text("x" * 201, "the contact name")


def test_every_url_is_built_from_the_base_url_and_a_signed_token() -> None:
    base = "https://news.example.org/"
    made = {
        "unsubscribe": urls.unsubscribe_url(base, SECRET, 7),
        "manage": urls.manage_url(base, SECRET, 7),
        "confirm": urls.confirm_url(base, SECRET, 7),
    }
    for purpose, url in made.items():
        parts = urlsplit(url)
        assert (parts.scheme, parts.netloc, parts.path) == ("https", "news.example.org", f"/{purpose}")
        assert read_token(SECRET, purpose, parse_qs(parts.query)["token"][0]) == 7
    assert urls.one_click_url(base, SECRET, 7) == made["unsubscribe"]
    mailto = urls.unsubscribe_mailto("unsub@news.example.org", SECRET, 7)
    assert mailto.startswith("mailto:unsub@news.example.org?subject=unsubscribe%20")
    yes, no = urls.feedback_url(base, SECRET, 7, 41, True), urls.feedback_url(base, SECRET, 7, 41, False)
    assert urlsplit(yes).path == "/feedback" and yes != no
    claim = read_feedback_token(SECRET, parse_qs(urlsplit(yes).query)["token"][0])
    assert (claim.subscription_id, claim.item_id, claim.relevant) == (7, 41, True)
    assert read_feedback_token(SECRET, parse_qs(urlsplit(no).query)["token"][0]).relevant is False


def test_feedback_tokens_are_bound_to_their_purpose() -> None:
    token = make_feedback_token(SECRET, 7, 41, True)
    with pytest.raises(InvalidToken, match="not a 'unsubscribe' link"):
        read_token(SECRET, "unsubscribe", token)
    with pytest.raises(InvalidToken) as bad:
        read_feedback_token(SECRET, urls.unsubscribe_url("https://x", SECRET, 7).split("token=")[1])
    assert bad.value.reason == "wrong-purpose"
    with pytest.raises(InvalidToken) as forged:
        read_feedback_token("another-secret-key-entirely", token)
    assert forged.value.reason == "bad-signature"
    assert read_token(SECRET, "feedback", token) == 7


@pytest.mark.parametrize(("address", "expected"), [
    ("reader@例子.公司", ["reader@xn--fsqu00a.xn--55qx5d"]),  # an IDN domain in IDNA
    ("not an address\r\nBcc: w@evil.example>, <z@evil.example", None),  # forced in: still one mailbox
    ("用户@example.com", None),  # a non-ASCII local part (SMTPUTF8): raw UTF-8, as before
])
def test_unusual_addresses_never_stop_a_run_nor_add_a_header(address: str, expected: list[str] | None) -> None:
    sub = _subscription("Zhang")
    sub.contact.email = address
    data = digest_message(sub, Digest(7, "weekly:2026-W48", "en", []), settings=SETTINGS, secret=SECRET,
                          message_id=message_id_for(7, "weekly:2026-W48"))
    msg = message_from_bytes(data, policy=policy.default)
    assert list(msg.keys()) == DIGEST_HEADERS and msg["Bcc"] is None
    assert len(msg["To"].addresses) == 1
    if expected is not None:
        assert [a.addr_spec for a in msg["To"].addresses] == expected
