// Structured output through the JavaScript clients, unchanged, against a running gateway and
// the project's mock providers (started by tests/compat/test_js_clients.py, which passes
// GATEWAY_URL and GATEWAY_KEY). Each asks for an object from a model served over the other
// protocol, over Gemini and over its own, and checks the object it gets back: the mocks
// answer an instance of the schema they are given (mockserver/json_schema.py).
import assert from "node:assert/strict";
import { test } from "node:test";

import { createAnthropic } from "@ai-sdk/anthropic";
import { createOpenAI } from "@ai-sdk/openai";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import Anthropic from "@anthropic-ai/sdk";
import { zodOutputFormat } from "@anthropic-ai/sdk/helpers/zod";
import { generateObject, generateText, Output, streamObject } from "ai";
import OpenAI from "openai";
import { zodResponseFormat, zodTextFormat } from "openai/helpers/zod";
import { z } from "zod";

const base = process.env.GATEWAY_URL;
const apiKey = process.env.GATEWAY_KEY;
if (!base || !apiKey) throw new Error("GATEWAY_URL and GATEWAY_KEY must be set");

const Event = z.object({
  name: z.string(),
  date: z.string(),
  attendees: z.array(z.string()),
  confirmed: z.boolean(),
});
// What the mocks answer for Event's schema: every property, strings named after themselves.
const EVENT = { name: "name", date: "date", attendees: ["attendees"], confirmed: true };
const ASK = "Alice and Bob go to a science fair on Friday.";

const openai = new OpenAI({ baseURL: `${base}/v1`, apiKey, maxRetries: 0 });
const anthropic = new Anthropic({ baseURL: base, apiKey, maxRetries: 0 });
const aiOpenAI = createOpenAI({ baseURL: `${base}/v1`, apiKey });
const aiAnthropic = createAnthropic({ baseURL: `${base}/v1`, apiKey });
const aiCompatible = createOpenAICompatible({
  name: "gatewayz",
  baseURL: `${base}/v1`,
  apiKey,
  supportsStructuredOutputs: true,
});

for (const model of ["test/claude", "test/claude-legacy", "test/gemini", "test/echo"]) {
  test(`openai chat.completions.parse on ${model}`, async () => {
    const completion = await openai.chat.completions.parse({
      model,
      messages: [{ role: "user", content: ASK }],
      response_format: zodResponseFormat(Event, "event"),
    });
    assert.deepEqual(completion.choices[0].message.parsed, EVENT);
    assert.equal(completion.choices[0].finish_reason, "stop");
  });
}

for (const model of ["test/claude-legacy", "test/gemini"]) {
  test(`openai chat.completions.stream with a schema on ${model}`, async () => {
    const stream = openai.chat.completions.stream({
      model,
      messages: [{ role: "user", content: ASK }],
      response_format: zodResponseFormat(Event, "event"),
    });
    const final = await stream.finalChatCompletion();
    assert.deepEqual(final.choices[0].message.parsed, EVENT);
  });

  test(`openai responses.parse on ${model}`, async () => {
    const response = await openai.responses.parse({
      model,
      input: ASK,
      text: { format: zodTextFormat(Event, "event") },
    });
    assert.deepEqual(response.output_parsed, EVENT);
  });
}

for (const model of ["test/echo", "test/gemini", "test/claude"]) {
  test(`anthropic messages.parse on ${model}`, async () => {
    const message = await anthropic.messages.parse({
      model,
      max_tokens: 500,
      messages: [{ role: "user", content: ASK }],
      output_config: { format: zodOutputFormat(Event) },
    });
    assert.deepEqual(message.parsed_output, EVENT);
    assert.equal(message.stop_reason, "end_turn");
  });
}

for (const model of ["test/claude", "test/claude-legacy", "test/gemini"]) {
  test(`ai generateObject through @ai-sdk/openai .chat() on ${model}`, async () => {
    const { object } = await generateObject({
      model: aiOpenAI.chat(model),
      schema: Event,
      prompt: ASK,
      maxRetries: 0,
    });
    assert.deepEqual(object, EVENT);
  });

  test(`ai streamObject through @ai-sdk/openai .chat() on ${model}`, async () => {
    const result = streamObject({
      model: aiOpenAI.chat(model),
      schema: Event,
      prompt: ASK,
      maxRetries: 0,
      onError: ({ error }) => {
        throw error;
      },
    });
    const partials = [];
    for await (const partial of result.partialObjectStream) partials.push(partial);
    assert.ok(partials.length >= 1);
    assert.deepEqual(await result.object, EVENT);
  });

  test(`ai generateObject through @ai-sdk/openai's Responses model on ${model}`, async () => {
    const { object } = await generateObject({
      model: aiOpenAI(model), // the AI SDK's default: the Responses API
      schema: Event,
      prompt: ASK,
      maxRetries: 0,
    });
    assert.deepEqual(object, EVENT);
  });

  test(`ai generateObject through @ai-sdk/openai-compatible on ${model}`, async () => {
    const { object } = await generateObject({
      model: aiCompatible.chatModel(model),
      schema: Event,
      prompt: ASK,
      maxRetries: 0,
    });
    assert.deepEqual(object, EVENT);
  });
}

for (const model of ["test/echo", "test/gemini"]) {
  test(`ai generateText with Output.object through @ai-sdk/anthropic on ${model}`, async () => {
    const { output } = await generateText({
      model: aiAnthropic(model),
      output: Output.object({ schema: Event }),
      prompt: ASK,
      maxRetries: 0,
      // Which Claude takes output_config the AI SDK decides by name: these are served by
      // other protocols and take it through the gateway.
      providerOptions: { anthropic: { structuredOutputMode: "outputFormat" } },
    });
    assert.deepEqual(output, EVENT);
  });
}
