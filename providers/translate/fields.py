"""What becomes of each field of a request translated to another protocol: one declared
table per protocol pair, so nothing a client sends reaches a provider that does not speak
it, and nothing disappears without a rule (docs/protocols.md shows the tables).

A field is **mapped** (the translator carries it over, perhaps renamed or reshaped),
**dropped** (it has no counterpart and only tunes how the answer is made: sampling hints,
storage, routing hints), or **refused** with a 400 naming it (it would change what the
answer is: several choices, log probabilities, audio). A field the table does not know (a
newer API's, another gateway's extension) is dropped too. Every dropped field is named in
the answer's `x-gatewayz-dropped-params` header; a client that sends
`provider: {"require_parameters": true}` (OpenRouter's switch) is routed only to
deployments that drop none (gateway.pipeline.routing).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from core.errors import bad_request

JSON = dict[str, Any]


def _set(value: Any) -> bool:
    return value not in (None, False, "", [], {})


@dataclass(frozen=True, slots=True)
class Rule:
    kind: str  # map | drop | refuse
    why: str = ""
    applies: Callable[[Any], bool] = _set  # whether the value calls for the rule


MAP, DROP, REFUSE = "map", "drop", "refuse"
Table = Mapping[str, Rule]


def _mapped(why: str = "") -> Rule:
    return Rule(MAP, why)


def _dropped(why: str) -> Rule:
    return Rule(DROP, why)


def _refused(why: str, applies: Callable[[Any], bool] = _set) -> Rule:
    return Rule(REFUSE, why, applies)


def _several(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 1


def _audio(value: Any) -> bool:
    return isinstance(value, list) and "audio" in value


# The fields of OpenAI's chat request that mean the same to every target. (The gateway's own,
# `provider` and `models`, are taken out of the body before any translation.)
_CHAT_COMMON: dict[str, Rule] = {
    "model": _mapped("the provider's own id for the model"),
    "messages": _mapped("the turns, tool calls and results, images"),
    "max_tokens": _mapped("the output limit"),
    "max_completion_tokens": _mapped("the output limit"),
    "temperature": _mapped("as it is"),
    "top_p": _mapped("as it is"),
    "stop": _mapped("stop sequences"),
    "tools": _mapped("function declarations with their schemas"),
    "tool_choice": _mapped("the target's tool choice"),
    "reasoning_effort": _mapped("a thinking budget"),
    "response_format": _mapped("structured output (see above)"),
    "stream": _mapped("as it is"),
    "stream_options": _mapped("the gateway reports usage in the client's protocol"),
    "logprobs": _refused("log probabilities"),
    "top_logprobs": _refused("log probabilities"),
    "logit_bias": _refused("token biases"),
    "modalities": _refused("audio output", _audio),
    "audio": _refused("audio output"),
    "web_search_options": _refused("web search (the answer would differ)"),
    "functions": _refused("the deprecated function calling: send 'tools'"),
    "function_call": _refused("the deprecated function calling: send 'tool_choice'"),
    "store": _dropped("OpenAI's stored completions"),
    "metadata": _dropped("OpenAI's stored completions' tags"),
    "service_tier": _dropped("OpenAI's processing tiers"),
    "prediction": _dropped("predicted outputs only make OpenAI faster"),
    "prompt_cache_key": _dropped("OpenAI's cache routing hint"),
    "prompt_cache_retention": _dropped("OpenAI's cache routing hint"),
    "prompt_cache_options": _dropped("OpenAI's cache routing hint"),
    "verbosity": _dropped("a hint on length"),
    "moderation": _dropped("OpenAI's own moderation"),
}

CHAT_TO_ANTHROPIC: Table = {
    **_CHAT_COMMON,
    "top_k": _mapped("an extension of the chat API that Anthropic takes"),
    "user": _mapped("metadata.user_id"),
    "safety_identifier": _mapped("metadata.user_id, when 'user' is not set"),
    "parallel_tool_calls": _mapped("tool_choice.disable_parallel_tool_use"),
    "n": _refused("several choices", _several),
    "seed": _dropped("Anthropic has no seed"),
    "frequency_penalty": _dropped("Anthropic has no penalties"),
    "presence_penalty": _dropped("Anthropic has no penalties"),
}

CHAT_TO_GEMINI: Table = {
    **_CHAT_COMMON,
    "top_k": _mapped("generationConfig.topK"),
    "n": _mapped("generationConfig.candidateCount"),
    "seed": _mapped("generationConfig.seed"),
    "frequency_penalty": _mapped("generationConfig.frequencyPenalty"),
    "presence_penalty": _mapped("generationConfig.presencePenalty"),
    "user": _dropped("Gemini has no end-user field"),
    "safety_identifier": _dropped("Gemini has no end-user field"),
    "parallel_tool_calls": _dropped("Gemini has no switch for it"),
}

# Anthropic's Messages request → OpenAI chat (for an OpenAI-protocol provider, and for
# Gemini through chat). `top_k` is carried only to a protocol that takes it (Gemini); the
# chat API has none.
MESSAGES_TO_CHAT: Table = {
    "model": _mapped("the provider's own id for the model"),
    "messages": _mapped("the turns; tool_use and tool_result blocks as tool calls and results"),
    "max_tokens": _mapped("as it is"),
    "system": _mapped("a system message"),
    "temperature": _mapped("as it is"),
    "top_p": _mapped("as it is"),
    "stop_sequences": _mapped("stop"),
    "metadata": _mapped("metadata.user_id: user"),
    "tools": _mapped("functions, input_schema as parameters"),
    "tool_choice": _mapped("any: required, tool: the named function"),
    "thinking": _mapped("reasoning_effort, for a model with the reasoning capability"),
    "output_config": _mapped("format: response_format; effort: reasoning_effort"),
    "output_format": _mapped("response_format"),
    "stream": _mapped("as it is, with usage asked for"),
    "top_k": _dropped("OpenAI's chat API has no top_k (Gemini, through chat, takes it)"),
    "service_tier": _dropped("Anthropic's processing tiers"),
    "cache_control": _dropped("Anthropic's automatic prompt caching"),
    "speed": _dropped("Anthropic's fast mode"),
    "inference_geo": _dropped("Anthropic's inference region"),
    "diagnostics": _dropped("Anthropic's diagnostics"),
    "user_profile_id": _dropped("Anthropic's attribution to another party"),
    "workspace_id": _dropped("Anthropic's workspaces"),
    "container": _refused("Anthropic's code execution container"),
    "mcp_servers": _refused("Anthropic's MCP connector"),
    "context_management": _refused("Anthropic's context editing"),
}


def fields_apply(body: JSON, table: Table, *, carried: frozenset[str] = frozenset()) -> JSON:
    """The fields of `body` the translator may read: all but those dropped (`carried`: those
    the table drops that the target takes after all); refuses (400) what the table refuses."""
    dropped = fields_dropped(body, table, carried=carried)
    return {k: v for k, v in body.items() if k not in dropped} if dropped else body


def fields_dropped(body: JSON, table: Table, *, carried: frozenset[str] = frozenset()) -> list[str]:
    """The fields of `body` a translation by `table` drops, in order; refuses (400) a field
    the table refuses."""
    dropped = []
    for name, value in body.items():
        rule = table.get(name)
        if rule is None or (rule.kind == DROP and name not in carried):
            if rule is None or rule.applies(value):
                dropped.append(name)
        elif rule.kind == REFUSE and rule.applies(value):
            raise bad_request(
                f"'{name}' is not supported by this model's provider ({rule.why}).", param=name
            )
    return dropped
