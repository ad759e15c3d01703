"""Property-based fuzzing of every operation in the app's OpenAPI spec (/api/openapi.json) with schemathesis, as a
logged-in staff user (session cookie + CSRF header), in process over ASGI: no request may answer 5xx.

Runs on its own seeded installation, so the mutations it makes (new subscriptions, decisions) touch nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import ASGIClient, get_client

from patentsift.web.app import create_app
from patentsift.web.security import CSRF_HEADER
from tests.e2e.world import EMAIL, PASSWORD, build_world

MAX_EXAMPLES = 12  # per operation: the whole file stays well under a minute


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return create_app(build_world(tmp_path_factory.mktemp("fuzz-world")).cfg, testing=True)


@pytest.fixture(scope="module")
def client(app: Any) -> Iterator[ASGIClient]:
    """An in-process client logged in through the real login form, sending the session's CSRF token."""
    with get_client(app) as client:
        form = client.get("/login").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
        res = client.post("/login", data={"email": EMAIL, "password": PASSWORD, "csrf_token": token},
                          allow_redirects=False)
        assert res.status_code == 303, res.text
        page = client.get("/search").text
        client.headers[CSRF_HEADER] = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
        assert client.get("/api/queue").status_code == 200
        yield client


@pytest.fixture(scope="module")
def api_schema(app: Any) -> Any:
    return schemathesis.openapi.from_asgi("/api/openapi.json", app)


def _fuzz(operation: Any, client: ASGIClient, mode: GenerationMode) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate, Phase.shrink])
    def run(case: Any) -> None:
        case.call_and_validate(session=client, checks=[not_a_server_error])

    try:
        run()
    except Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            raise
        # no invalid request can be built (e.g. an operation without parameters): nothing to send


def test_no_operation_answers_a_server_error(api_schema: Any, client: ASGIClient, subtests: Any) -> None:
    # schemathesis' lazy pytest loader (from_fixture/parametrize) breaks on pytest 9.2 (Function._nodeid is gone):
    # one subtest per operation and generation mode instead
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 10, [op.label for op in operations]
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            with subtests.test(operation=operation.label, mode=mode.value):
                _fuzz(operation, client, mode)
