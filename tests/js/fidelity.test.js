// What the JavaScript SDKs read beyond the answer itself (the Python side:
// tests/gateway/test_client_fidelity.py): the input tokens at an Anthropic stream's start,
// the model list in Anthropic's shape, base64 embeddings (the openai SDK's default).
import assert from "node:assert/strict";
import { test } from "node:test";

import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";

const base = process.env.GATEWAY_URL;
const apiKey = process.env.GATEWAY_KEY;
const openai = new OpenAI({ baseURL: `${base}/v1`, apiKey, maxRetries: 0 });
const anthropic = new Anthropic({ baseURL: base, apiKey, maxRetries: 0 });

test("an Anthropic stream over an OpenAI model starts with its input tokens", async () => {
  const stream = anthropic.messages.stream({
    model: "test/echo",
    max_tokens: 50,
    messages: [{ role: "user", content: "how many tokens is this prompt worth" }],
  });
  let started;
  for await (const event of stream) if (event.type === "message_start") started = event;
  const final = await stream.finalMessage();
  assert.ok(started.message.usage.input_tokens > 0);
  assert.equal(final.usage.input_tokens, 10); // the mock: words + 3
});

test("the Anthropic SDK lists and retrieves models in its own shape", async () => {
  const ids = [];
  for await (const model of anthropic.models.list({ limit: 3 })) {
    assert.equal(model.type, "model");
    assert.ok(model.display_name && model.created_at);
    ids.push(model.id);
  }
  assert.ok(ids.length > 3 && ids.includes("test/claude"));
  assert.deepEqual(ids, [...ids].sort());
  const one = await anthropic.models.retrieve("test/claude");
  assert.equal(one.id, "test/claude");
  await assert.rejects(anthropic.models.retrieve("test/nothing-here"), Anthropic.NotFoundError);
});

test("base64 embeddings decode to the same floats", async () => {
  const ask = { model: "test/embed", input: "one two", dimensions: 8 };
  const byDefault = await openai.embeddings.create(ask);
  const floats = await openai.embeddings.create({ ...ask, encoding_format: "float" });
  assert.equal(byDefault.data[0].embedding.length, 8);
  assert.deepEqual(byDefault.data[0].embedding, floats.data[0].embedding);
});

test("top_k on an OpenAI-protocol model is dropped by its rule and named", async () => {
  const { data, response } = await anthropic.messages
    .create({
      model: "test/echo",
      max_tokens: 50,
      top_k: 40,
      messages: [{ role: "user", content: "hello" }],
    })
    .withResponse();
  assert.equal(data.content[0].text, "You said: hello");
  assert.equal(response.headers.get("x-gatewayz-dropped-params"), "top_k");
});
