"""What SDKs read beyond the answer itself: the input tokens at an Anthropic stream's start
over an OpenAI-protocol model, the model list in Anthropic's shape for Anthropic's SDK, and
embeddings in the `openai` SDK's default encoding (base64) equal to the floats."""

from __future__ import annotations

from decimal import Decimal

import anthropic
import httpx
import openai
import pytest

pytestmark = pytest.mark.smoke

ANTHROPIC_HEADERS = {"anthropic-version": "2023-06-01"}


def test_an_anthropic_stream_over_an_openai_model_starts_with_its_input_tokens(
    gateway, make_account
):
    account = make_account(credit=Decimal("1"))
    client = anthropic.Anthropic(base_url=gateway, api_key=account.key, max_retries=0)
    ask = [{"role": "user", "content": "how many tokens is this prompt worth"}]

    with client.messages.stream(model="test/echo", max_tokens=50, messages=ask) as stream:
        events = list(stream)
        final = stream.get_final_message()

    start = next(e for e in events if e.type == "message_start")
    assert start.message.usage.input_tokens > 0  # the prompt's estimate
    assert final.usage.input_tokens == 7 + 3  # then the exact figure (mock: words + 3)


def test_the_anthropic_sdk_lists_models_in_its_own_shape(gateway, make_account):
    account = make_account(credit=Decimal("1"))
    client = anthropic.Anthropic(base_url=gateway, api_key=account.key, max_retries=0)

    models = list(client.models.list(limit=3))  # auto-paginated, three at a time
    one = client.models.retrieve("test/claude")

    ids = [m.id for m in models]
    assert len(ids) > 3 and ids == sorted(ids) and "test/claude" in ids
    assert all(m.type == "model" and m.display_name and m.created_at for m in models)
    assert (one.id, one.type) == ("test/claude", "model")
    with pytest.raises(anthropic.NotFoundError) as missing:
        client.models.retrieve("test/nothing-here")
    assert missing.value.body["error"]["type"] == "not_found_error"


def test_anthropic_pages_have_their_cursors(gateway):
    first = httpx.get(f"{gateway}/v1/models?limit=2", headers=ANTHROPIC_HEADERS).json()
    after = f"{gateway}/v1/models?limit=2&after_id={first['last_id']}"
    second = httpx.get(after, headers=ANTHROPIC_HEADERS).json()
    before = f"{gateway}/v1/models?limit=2&before_id={second['first_id']}"
    back = httpx.get(before, headers=ANTHROPIC_HEADERS).json()

    assert first["has_more"] and len(first["data"]) == 2
    assert first["first_id"] == first["data"][0]["id"]
    assert second["data"][0]["id"] > first["last_id"]
    assert [m["id"] for m in back["data"]] == [m["id"] for m in first["data"]]
    bad = httpx.get(f"{gateway}/v1/models?limit=0", headers=ANTHROPIC_HEADERS)
    assert bad.status_code == 400 and bad.json()["type"] == "error"
    # OpenAI's clients still get OpenAI's list.
    assert httpx.get(f"{gateway}/v1/models").json()["object"] == "list"


def test_base64_embeddings_decode_to_the_same_floats(gateway, make_account):
    account = make_account(credit=Decimal("1"))
    client = openai.OpenAI(base_url=f"{gateway}/v1", api_key=account.key, max_retries=0)

    default = client.embeddings.create(model="test/embed", input="one two", dimensions=8)
    floats = client.embeddings.create(
        model="test/embed", input="one two", dimensions=8, encoding_format="float"
    )

    assert default.data[0].embedding == floats.data[0].embedding
    assert len(default.data[0].embedding) == 8
