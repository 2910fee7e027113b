"""schemathesis over the project's OpenAPI document (/api/schema): every operation, the
management API and the inference routes, fuzzed through a real gateway process. No answer
may be a 5xx, and every answer must be documented and match its schema.

The requests come from a customer of their own (what the fuzzer creates, revokes or
restricts is theirs), with credit; the inference bodies name a served model half of the
time, so the fuzzer reaches providers (the mock) and not only validation."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

SERVED_MODELS = {
    "/v1/chat/completions": "test/echo",
    "/v1/responses": "test/echo",
    "/v1/messages": "test/claude",
    "/v1/messages/count_tokens": "test/claude",
    "/v1/embeddings": "test/embed",
    "/v1/images/generations": "test/dall-e",
}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES_PER_OPERATION = 30
ANSWERS: Counter[tuple[str, int]] = Counter()  # (operation, status) over the whole run


@pytest.fixture(scope="module")
def gateway_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "gateway.log"


@pytest.fixture(scope="module")
def gateway(
    start_gateway: Any, stop_gateway: Any, gateway_log: Path, stripe_double: str
) -> Iterator[str]:
    """A gateway of its own, whose log a failure shows (a 5xx's traceback is there), with
    payments on against the Stripe double (so a purchase reaches Stripe's API)."""
    from tests.conftest import STRIPE_KEY, WEBHOOK_SECRET

    url = str(
        start_gateway(
            log=gateway_log,
            STRIPE_SECRET_KEY=STRIPE_KEY,
            STRIPE_API_BASE=stripe_double,
            STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        )
    )
    yield url
    stop_gateway(url)


@pytest.fixture(scope="module")
def fuzzer_key(gateway: str, django_db_blocker: Any) -> tuple[int, str]:
    from accounts.services import api_key_create, user_create
    from billing.services import credit_grant

    with django_db_blocker.unblock():
        user = user_create(email="fuzzer@example.com")
        credit_grant(user=user, amount=Decimal("1000"), reference="fuzzer")
        api_key, raw = api_key_create(user=user, name="fuzzer")
    return api_key.pk, raw


@pytest.fixture(scope="module")
def api_schema(gateway: str, fuzzer_key: tuple[int, str]) -> schemathesis.BaseSchema:
    own_id, raw = fuzzer_key
    document = httpx.get(f"{gateway}/api/schema?format=json", timeout=30).json()
    schema = schemathesis.openapi.from_dict(document)
    schema.config.update(base_url=gateway)

    @schema.auth()
    class GatewayzKey:
        def get(self, case: Any, context: Any) -> str:
            return raw

        def set(self, case: Any, data: str, context: Any) -> None:
            case.headers = {
                **(case.headers or {}),
                "authorization": f"Bearer {data}",
                "x-api-key": data,
            }

    @schema.hook
    def map_body(context: Any, body: Any) -> Any:
        model = SERVED_MODELS.get(context.operation.path)
        # Most bodies (those whose generated name has an even length: hypothesis forbids
        # `random`, and its favourite name is "").
        if model and isinstance(body, dict) and not len(str(body.get("model", ""))) % 2:
            body["model"] = model
        return body

    @schema.hook
    def map_path_parameters(context: Any, parameters: Any) -> Any:
        # The fuzzer may revoke or restrict any key but the one it fuzzes with (an expired
        # key would turn every later request into a 401 and test nothing).
        if parameters and parameters.get("key_id") == own_id:
            parameters["key_id"] = own_id + 1_000_000
        return parameters

    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
# Every operation runs inside this one test (as subtests): ~80 of them take about two
# minutes here, past the suite's per-test hang guard of 120 s on a loaded machine.
@pytest.mark.timeout(600)
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_no_operation_answers_5xx_or_off_its_schema(case: Any, gateway_log: Path) -> None:
    try:
        response = case.call_and_validate(checks=CHECKS, timeout=30)
    except Exception:
        print(gateway_log.read_text(errors="replace")[-20_000:])  # shown with the failure
        raise
    ANSWERS[(f"{case.method} {case.path}", response.status_code)] += 1


def test_the_fuzzer_reached_the_providers_and_past_validation() -> None:
    """Runs after the fuzzing above (file order): it was not all 400s and 404s."""
    served = {operation for (operation, status), _ in ANSWERS.items() if status in (200, 201)}
    for operation in (
        "POST /v1/chat/completions",
        "POST /v1/messages",
        "POST /v1/embeddings",
        "POST /v1/messages/count_tokens",
        "POST /user/api-keys",
    ):
        assert operation in served, [a for a in sorted(ANSWERS.items()) if "/v1/" in a[0][0]]


def test_every_protected_operation_refuses_a_request_without_credentials(gateway: str) -> None:
    document = httpx.get(f"{gateway}/api/schema?format=json", timeout=30).json()
    protected = [
        (method, path)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if operation.get("security", document.get("security")) not in (None, [], [{}])
    ]
    assert len(protected) >= 15
    for method, path in protected:
        url = gateway + re.sub(r"\{[a-z_]+\}", "1", path.replace("{provider}", "mock"))
        answer = httpx.request(method.upper(), url, json={}, timeout=30)
        assert answer.status_code == 401, (method, path, answer.status_code, answer.text)


def test_the_document_is_valid_and_drf_spectacular_has_no_doubts(tmp_path: Path) -> None:
    """A warning means part of the document is guessed or lost (two serializers of one
    name once gave the key creation route the signup route's body)."""
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "s.yaml"))
