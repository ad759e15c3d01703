"""Authorization on every curation, profile, subscription and report route, on a real app: a SQLite database
(migrations), an embedded index of real documents, stored matches, two outlets with their own staff.

East's staff get 404 on West's objects (reads and writes alike), 403 where a shared object is read-only;
no session: pages redirect to /login, the API answers 401; an unsafe request without the CSRF token: 403.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from patentsift.db import open_database
from subscribers.tokens import make_token
from tests.integration.dist_support import SECRET
from tests.integration.web_site import Site, csrf_from, login


def west_routes(site: Site) -> list[tuple[str, str, dict | None, dict | None]]:
    """(method, url, form, json) of every route of ours aimed at West's objects."""
    w = site.west_sub
    item = site.west_items[0]
    return [
        ("GET", f"/curation?subscription={w}", None, None),
        ("GET", f"/api/queue?subscription_id={w}", None, None),
        ("POST", "/curation/decide", {"ids": [item], "action": "approve"}, None),
        ("POST", "/api/queue/decisions", None, {"ids": [item], "action": "reject"}),
        ("POST", "/api/queue/decisions", None, {"ids": [site.east_items[0], item], "action": "pin"}),
        ("GET", "/api/profiles/west-private", None, None),
        ("GET", "/profiles/west-private", None, None),
        ("GET", "/api/profiles/west-private/preview?weeks=4", None, None),
        ("PUT", "/api/profiles/west-private", None, {"name": "west-private", "query": "battery"}),
        ("DELETE", "/api/profiles/west-private", None, None),
        ("POST", "/profiles/west-private", {"description": "taken over"}, None),
        ("POST", "/profiles/west-private/delete", {}, None),
        ("GET", f"/api/subscriptions/{w}", None, None),
        ("POST", "/api/subscriptions", None, {"contact_id": site.west_contact, "profiles": ["semis"]}),
        ("POST", f"/api/subscriptions/{w}/pause", None, None),
        ("POST", f"/api/subscriptions/{w}/resume", None, None),
        ("GET", f"/api/subscriptions/{w}/digest/preview", None, None),
        ("POST", "/subscriptions", {"contact_id": site.west_contact, "profiles": "semis"}, None),
        ("POST", f"/subscriptions/{w}/pause", {}, None),
        ("POST", f"/subscriptions/{w}/resume", {}, None),
        ("GET", f"/subscriptions/{w}/digest", None, None),
        ("GET", f"/subscriptions/{w}/digest/raw", None, None),
        ("POST", f"/api/subscriptions/{w}/confirmation/resend", None, None),
        ("POST", f"/subscriptions/{w}/confirmation/resend", {}, None),
        ("POST", f"/api/contacts/{site.west_contact}/unflag", None, None),
        ("POST", f"/contacts/{site.west_contact}/unflag", {}, None),
        ("POST", f"/outlets/{site.west_outlet}/identity", {"sender_name": "Taken over"}, None),
        ("POST", f"/organizations/{site.west_org}/contacts", {"email": "spy@east.example"}, None),
        ("POST", "/organizations", {"name": "Planted", "outlet_id": site.west_outlet}, None),
        ("GET", f"/reports?outlet_id={site.west_outlet}", None, None),
        ("GET", f"/reports.csv?outlet_id={site.west_outlet}", None, None),
        ("GET", f"/api/reports?outlet_id={site.west_outlet}", None, None),
        ("GET", f"/organizations?outlet_id={site.west_outlet}", None, None),
        ("GET", f"/staff?outlet_id={site.west_outlet}", None, None),
    ]


def send(client: TestClient, method: str, url: str, form: dict | None, body: dict | None,
         csrf: str | None) -> object:
    headers = {"X-CSRF-Token": csrf} if csrf and form is None else {}
    if form is not None and csrf:
        form = {**form, "csrf_token": csrf}
    return client.request(method, url, data=form, json=body, headers=headers, follow_redirects=False)


def west_state(site: Site) -> tuple:
    """What East must not be able to change: West's subscription, items, organization and private profile."""
    from distribution.models import ReviewItem
    from patentsift.wiring import standalone_match_store
    from subscribers.models import Contact, Organization, Subscription

    with open_database(site.cfg) as db, db.session() as s:
        sub = s.get(Subscription, site.west_sub)
        items = sorted((i.id, i.status, i.pinned) for i in s.query(ReviewItem)
                       .filter(ReviewItem.subscription_id == site.west_sub))
        orgs = sorted(o.name for o in s.query(Organization).filter(Organization.outlet_id == site.west_outlet))
        contacts = s.query(Contact).count()
        subs = s.query(Subscription).count()
        state = (sub.status, items, orgs, contacts, subs)
    with standalone_match_store(site.cfg.database) as store:
        return (*state, store.profile("west-private").to_dict())


def test_east_staff_get_404_on_every_west_object(client: TestClient, site: Site) -> None:
    csrf = login(client, "staff@east.example")
    before = west_state(site)
    for method, url, form, body in west_routes(site):
        res = send(client, method, url, form, body, csrf)
        assert res.status_code == 404, (method, url, res.status_code, res.text[:300])
    assert west_state(site) == before  # nothing changed, no organization planted in West


def test_east_staff_cannot_change_shared_profiles(client: TestClient, site: Site) -> None:
    csrf = login(client, "staff@east.example")
    assert client.get("/api/profiles/semis").json()["editable"] is False  # shared (made by the CLI): read-only
    res = send(client, "PUT", "/api/profiles/semis", None, {"name": "semis", "query": "x"}, csrf)
    assert res.status_code == 403
    assert send(client, "DELETE", "/api/profiles/semis", None, None, csrf).status_code == 403
    assert send(client, "POST", "/profiles/semis", {"query": "x"}, None, csrf).status_code == 403
    names = {p["name"] for p in client.get("/api/profiles").json()}
    assert names == {"semis", "general"}  # West's private profile is not listed


def test_lists_show_only_the_own_outlet(client: TestClient, site: Site) -> None:
    login(client, "staff@east.example")
    assert [s["id"] for s in client.get("/api/subscriptions").json()] == [site.east_sub]
    queued = client.get("/api/queue").json()
    assert queued and {i["subscription_id"] for i in queued} == {site.east_sub}
    page = client.get("/subscriptions").text
    assert "East Works" in page and "West Works" not in page and "buyer@west.example" not in page
    report = client.get("/api/reports").json()
    assert {r["outlet"] for r in report["rows"]} == {"East"}
    assert "West" not in client.get("/reports.csv").text


def test_admin_sees_and_changes_every_outlet(client: TestClient, site: Site) -> None:
    csrf = login(client, "admin@west.example")
    assert {s["id"] for s in client.get("/api/subscriptions").json()} == {site.east_sub, site.west_sub}
    assert client.get(f"/api/subscriptions/{site.east_sub}/digest/preview").status_code == 200
    res = send(client, "POST", "/api/queue/decisions", None,
               {"ids": [site.east_items[0], site.west_items[0]], "action": "approve"}, csrf)
    assert res.status_code == 200 and res.json()["count"] == 2
    res = send(client, "POST", f"/api/subscriptions/{site.east_sub}/pause", None, None, csrf)
    assert res.json()["status"] == "paused"
    assert {r["outlet"] for r in client.get("/api/reports").json()["rows"]} == {"", "East", "West"}


def test_west_staff_see_west_but_not_east(client: TestClient, site: Site) -> None:
    csrf = login(client, "staff@west.example")
    assert client.get("/api/profiles/west-private").json()["editable"] is True
    assert client.get(f"/api/subscriptions/{site.east_sub}").status_code == 404
    res = send(client, "POST", "/api/queue/decisions", None, {"ids": [site.east_items[0]], "action": "approve"},
               csrf)
    assert res.status_code == 404


def test_no_session_redirects_pages_and_refuses_the_api(client: TestClient, site: Site) -> None:
    for method, url, form, body in west_routes(site):
        res = send(client, method, url, form, body, None)
        if url.startswith("/api/"):
            assert res.status_code in (401, 403), (method, url, res.status_code)  # 403: CSRF checked first
        elif method == "GET":
            assert res.status_code == 303 and res.headers["location"].startswith("/login?next="), (url, res)
        else:
            assert res.status_code in (303, 403), (method, url, res.status_code)
    for url in ("/curation", "/curation/audit", "/profiles", "/profiles/new", "/subscriptions", "/reports",
                "/organizations", "/staff", "/search/export?q=x&format=csv"):
        res = client.get(url, follow_redirects=False)
        assert res.status_code == 303 and res.headers["location"].startswith("/login?next="), url
    for url in ("/api/queue", "/api/queue/audit", "/api/profiles", "/api/subscriptions", "/api/reports",
                "/api/search/export?q=x"):
        assert client.get(url).status_code == 401, url


def test_missing_csrf_token_is_refused(client: TestClient, site: Site) -> None:
    login(client, "staff@east.example")
    item = site.east_items[0]
    for method, url, form, body in [
        ("POST", "/curation/decide", {"ids": [item], "action": "approve"}, None),
        ("POST", "/api/queue/decisions", None, {"ids": [item], "action": "approve"}),
        ("POST", "/api/profiles", None, {"name": "sneaky", "query": "battery"}),
        ("POST", "/profiles/new", {"name": "sneaky", "query": "battery"}, None),
        ("POST", f"/api/subscriptions/{site.east_sub}/pause", None, None),
        ("POST", f"/subscriptions/{site.east_sub}/pause", {}, None),
        ("POST", "/organizations", {"name": "Sneaky"}, None),
        ("POST", f"/organizations/{site.east_org}/contacts", {"email": "x@east.example"}, None),
    ]:
        res = send(client, method, url, form, body, None)
        assert res.status_code == 403, (method, url, res.status_code)
        res = send(client, method, url, form, body, "forged-token")
        assert res.status_code == 403, (method, url, res.status_code)
    assert client.get("/api/queue").json()[0]["status"] == "pending"


def test_subscriber_link_reaches_only_its_own_subscription(client: TestClient, site: Site) -> None:
    token = make_token(SECRET, "manage", site.east_sub)
    page = client.get(f"/manage?token={token}")
    assert page.status_code == 200 and "buyer@east.example" in page.text
    assert "buyer@west.example" not in page.text and "/curation" not in page.text  # nothing else visible
    csrf = csrf_from(page.text)
    res = client.post("/manage", data={"token": token, "action": "pause", "csrf_token": csrf})
    assert res.status_code == 200
    with open_database(site.cfg) as db, db.session() as s:
        from subscribers.models import Subscription

        assert s.get(Subscription, site.east_sub).status == "paused"
        assert s.get(Subscription, site.west_sub).status == "active"
    # the link opens no staff page, and other purposes' or forged tokens are refused
    assert client.get(f"/api/subscriptions/{site.east_sub}").status_code == 401
    for bad in (make_token(SECRET, "unsubscribe", site.east_sub), make_token("another-key" * 4, "manage", 1),
                token[:-3] + "abc"):
        assert client.get(f"/manage?token={bad}").status_code == 403
        assert client.post("/manage", data={"token": bad, "action": "unsubscribe", "csrf_token": csrf}
                           ).status_code == 403
    assert client.post("/manage", data={"token": token, "action": "resume"}).status_code == 403  # no CSRF
