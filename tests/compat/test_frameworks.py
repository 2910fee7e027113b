"""The Python frameworks people put in front of a gateway, unchanged, over real HTTP:
LangChain's ChatOpenAI and ChatAnthropic and pydantic-ai's agents, each asking for a
structured answer from a model served over the other protocol (tests/gateway/
test_structured_output.py has the SDK-level cases and what the mocks answer)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from langchain_anthropic import ChatAnthropic
from langchain_openai import ChatOpenAI
from pydantic_ai import Agent, NativeOutput
from pydantic_ai.models.anthropic import AnthropicModel
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.profiles import ModelProfile
from pydantic_ai.providers.anthropic import AnthropicProvider
from pydantic_ai.providers.openai import OpenAIProvider

from tests.support.structured import ASK, EVENT, Event

pytestmark = pytest.mark.smoke


@pytest.mark.parametrize("model", ["test/claude", "test/claude-legacy", "test/gemini"])
def test_langchain_chatopenai_with_structured_output(gateway, make_account, model):
    account = make_account(credit=Decimal("1"))
    llm = ChatOpenAI(model=model, base_url=f"{gateway}/v1", api_key=account.key, max_retries=0)

    assert llm.with_structured_output(Event).invoke(ASK) == EVENT  # json_schema, the default


@pytest.mark.parametrize("model", ["test/echo", "test/gemini"])
def test_langchain_chatanthropic_with_a_json_schema(gateway, make_account, model):
    account = make_account(credit=Decimal("1"))
    llm = ChatAnthropic(
        model_name=model, base_url=gateway, api_key=account.key, max_retries=0, timeout=30
    )

    assert llm.with_structured_output(Event, method="json_schema").invoke(ASK) == EVENT


@pytest.mark.parametrize("model", ["test/claude", "test/claude-legacy"])
def test_pydantic_ai_native_output_on_a_claude_over_the_openai_route(gateway, make_account, model):
    account = make_account(credit=Decimal("1"))
    provider = OpenAIProvider(base_url=f"{gateway}/v1", api_key=account.key)
    agent = Agent(OpenAIChatModel(model, provider=provider), output_type=NativeOutput(Event))

    assert agent.run_sync(ASK).output == EVENT


def test_pydantic_ai_native_output_on_an_openai_model_over_the_anthropic_route(
    gateway, make_account
):
    account = make_account(credit=Decimal("1"))
    provider = AnthropicProvider(base_url=gateway, api_key=account.key)
    # pydantic-ai knows which Claude models take a schema by name; this one is served by an
    # OpenAI-protocol provider, which takes it through the gateway.
    profile = ModelProfile(supports_json_schema_output=True)
    model = AnthropicModel("test/echo", provider=provider, profile=profile)

    assert Agent(model, output_type=NativeOutput(Event)).run_sync(ASK).output == EVENT
