"""The names the API's request schema knows: top-level and generationConfig fields, part
data kinds and function calling modes. Data only: a name missing here is a 400, as at the
API."""

from __future__ import annotations

# Fields the API knows, in lowerCamelCase; proto's snake_case spellings are accepted too.
REQUEST_FIELDS = frozenset(
    [
        "model",
        "contents",
        "tools",
        "toolConfig",
        "safetySettings",
        "systemInstruction",
        "generationConfig",
        "cachedContent",
        "labels",
    ]
)
CONFIG_FIELDS = frozenset(
    [
        "stopSequences",
        "responseMimeType",
        "responseSchema",
        "responseJsonSchema",
        "responseModalities",
        "candidateCount",
        "maxOutputTokens",
        "temperature",
        "topP",
        "topK",
        "seed",
        "presencePenalty",
        "frequencyPenalty",
        "responseLogprobs",
        "logprobs",
        "enableEnhancedCivicAnswers",
        "speechConfig",
        "thinkingConfig",
        "imageConfig",
        "mediaResolution",
        "audioTimestamp",
        "routingConfig",
        "modelSelectionConfig",
    ]
)
THINKING_FIELDS = frozenset(("includeThoughts", "thinkingBudget", "thinkingLevel"))
PART_DATA = (
    "text",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
)
MODES = ("MODE_UNSPECIFIED", "AUTO", "ANY", "NONE", "VALIDATED")
