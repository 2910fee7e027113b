"""Stored Responses API answers (gateway.endpoints.responses_state), through the official
openai SDK: kept by default, continued with `previous_response_id`, pointed at with
`item_reference` (what the AI SDK sends on every tool loop), read, listed and deleted by
their customer alone; written to the database by the usage writer, never on the request
path."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from decimal import Decimal
from typing import Any

import openai
import pytest
from django.utils import timezone

from billing.models import StoredResponse
from billing.stored_responses import stored_chain, stored_expire
from tests.support.waits import settled

pytestmark = pytest.mark.smoke

TOOL = {
    "type": "function",
    "name": "lookup",
    "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
}


def _client(gateway: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway}/v1", api_key=key, max_retries=0)


def _mock(**directive: Any) -> str:
    return "!mock " + json.dumps(directive)


def _stored(response_id: str, timeout: float = 10.0) -> StoredResponse:
    """The row the usage writer keeps, once it is written."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = StoredResponse.objects.filter(id=response_id).first()
        if row is not None:
            return row
        time.sleep(0.05)
    raise AssertionError(f"{response_id} was never stored")


@pytest.mark.parametrize("model", ["test/echo", "test/claude"])
def test_a_conversation_continues_from_its_stored_answer(gateway, make_account, model):
    account = make_account(credit=Decimal("1"))
    client = _client(gateway, account.key)

    first = client.responses.create(model=model, input="hello there")
    second = client.responses.create(
        model=model, previous_response_id=first.id, input=_mock(echo_request=True)
    )

    assert first.store is True and second.previous_response_id == first.id
    sent = json.loads(second.output_text)["body"]
    said = json.dumps(sent)  # the provider got the whole conversation, in its protocol
    assert "hello there" in said and "You said: hello there" in said


def test_a_stream_is_stored_and_continued(gateway, make_account):
    account = make_account(credit=Decimal("1"))
    client = _client(gateway, account.key)

    with client.responses.stream(model="test/claude", input="stream me") as stream:
        first = stream.get_final_response()
    second = client.responses.create(
        model="test/echo", previous_response_id=first.id, input=_mock(echo_request=True)
    )

    assert "You said: stream me" in json.dumps(json.loads(second.output_text)["body"])


def test_a_tool_loop_refers_to_the_earlier_items(gateway, make_account):
    """The AI SDK's second step: the assistant's turn as item references, then the output."""
    account = make_account(credit=Decimal("1"))
    client = _client(gateway, account.key)
    ask = _mock(reply="Let me look.", tool_call={"name": "lookup", "arguments": {"q": "x"}})

    first = client.responses.create(model="test/claude", input=ask, tools=[TOOL])
    message, call = first.output  # Claude wrote text before calling the tool
    second = client.responses.create(
        model="test/claude",
        tools=[TOOL],
        input=[
            {"role": "user", "content": "look x up"},
            {"type": "item_reference", "id": message.id},
            {"type": "item_reference", "id": call.id},
            {"type": "function_call_output", "call_id": call.call_id, "output": "found"},
        ],
    )

    assert (message.type, call.type) == ("message", "function_call")
    assert second.status == "completed"


def test_stored_answers_are_read_listed_and_deleted_by_their_customer(
    gateway, make_account, live_db
):
    owner, stranger = make_account(credit=Decimal("1")), make_account(credit=Decimal("1"))
    client, other = _client(gateway, owner.key), _client(gateway, stranger.key)
    raw = client.responses.with_raw_response.create(model="test/echo", input="keep this")
    created = raw.parse()

    read = client.responses.retrieve(created.id)
    items = client.responses.input_items.list(created.id)
    with pytest.raises(openai.NotFoundError):
        other.responses.retrieve(created.id)
    row = _stored(created.id)
    assert (row.user_id, row.previous_response_id) == (owner.user.pk, "")
    assert settled(raw.headers["x-request-id"]).cost > 0  # billed once, as any answer

    assert read.id == created.id and read.output_text == "You said: keep this"
    assert [i.type for i in items.data] == ["message"] and items.data[0].id
    with pytest.raises(openai.NotFoundError):
        other.responses.delete(created.id)
    client.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)
    assert not StoredResponse.objects.filter(id=created.id).exists()


def test_store_false_keeps_nothing(gateway, make_account, live_db):
    account = make_account(credit=Decimal("1"))
    client = _client(gateway, account.key)

    raw = client.responses.with_raw_response.create(
        model="test/echo", input="forget me", store=False
    )
    response = raw.parse()
    settled(raw.headers["x-request-id"])

    assert response.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)
    with pytest.raises(openai.NotFoundError) as missing:
        client.responses.create(model="test/echo", previous_response_id=response.id, input="x")
    assert missing.value.body["param"] == "previous_response_id"
    assert not StoredResponse.objects.filter(id=response.id).exists()


def test_the_database_reads_a_whole_chain_in_order_and_expires_it(gateway, make_account, live_db):
    account = make_account(credit=Decimal("1"))
    client = _client(gateway, account.key)
    first = client.responses.create(model="test/echo", input="one")
    second = client.responses.create(model="test/echo", previous_response_id=first.id, input="two")
    _stored(first.id), _stored(second.id)

    chain = stored_chain(response_id=second.id, user_id=account.user.pk)

    assert [entry["id"] for entry in chain] == [first.id, second.id]
    assert chain[1]["output"][0]["content"][0]["text"] == "You said: two"
    assert stored_chain(response_id=second.id, user_id=account.user.pk + 10_000) == []
    StoredResponse.objects.filter(id=first.id).update(expires_at=timezone.now() - timedelta(1))
    assert stored_expire() >= 1
    assert [
        entry["id"] for entry in stored_chain(response_id=second.id, user_id=account.user.pk)
    ] == [second.id]


def test_an_answer_deleted_before_its_row_is_written_stays_deleted(gateway, make_account, live_db):
    account = make_account(credit=Decimal("1"))
    client = _client(gateway, account.key)

    raw = client.responses.with_raw_response.create(model="test/echo", input="quick")
    client.responses.delete(raw.parse().id)  # most likely before the writer's batch
    settled(raw.headers["x-request-id"])  # the answer's row is written with this one

    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(raw.parse().id)
    assert not StoredResponse.objects.filter(
        id=raw.parse().id, expires_at__gt=timezone.now()
    ).exists()
