// The stateful Responses API through the JavaScript clients (the Python side:
// tests/gateway/test_responses_stored.py). The AI SDK's default OpenAI model speaks the
// Responses API and assumes `store: true`: on a tool loop's second step it sends the
// earlier assistant turn as `item_reference`s.
import assert from "node:assert/strict";
import { test } from "node:test";

import { createOpenAI } from "@ai-sdk/openai";
import { generateText, stepCountIs, tool } from "ai";
import OpenAI from "openai";
import { z } from "zod";

const base = process.env.GATEWAY_URL;
const apiKey = process.env.GATEWAY_KEY;
const openai = new OpenAI({ baseURL: `${base}/v1`, apiKey, maxRetries: 0 });
const aiOpenAI = createOpenAI({ baseURL: `${base}/v1`, apiKey });

// The model writes text, then calls the tool (as Claude does).
const LOOK_IT_UP =
  '!mock {"reply": "Let me look.", "tool_call": {"name": "lookup", "arguments": {"q": "x"}}}';

for (const model of ["test/claude", "test/echo"]) {
  test(`an AI SDK tool loop over the Responses API on ${model}`, async () => {
    const looked = [];
    const result = await generateText({
      model: aiOpenAI(model),
      prompt: LOOK_IT_UP,
      tools: {
        lookup: tool({
          description: "Looks a word up",
          inputSchema: z.object({ q: z.string() }),
          execute: async ({ q }) => {
            looked.push(q);
            return `found ${q}`;
          },
        }),
      },
      stopWhen: stepCountIs(2),
      maxRetries: 0,
    });
    assert.equal(result.steps.length, 2); // the second step, with its item references, served
    assert.deepEqual(looked, ["x", "x"]);
    if (model === "test/claude") {
      // Text before the tool call: the SDK refers to the stored assistant turn.
      const sent = result.steps[1].request.body;
      const items = typeof sent === "string" ? JSON.parse(sent).input : sent.input;
      assert.ok(items.some((item) => item.type === "item_reference"));
    }
  });
}

test("openai responses: stored, continued, listed and deleted", async () => {
  const first = await openai.responses.create({ model: "test/echo", input: "hello there" });
  const second = await openai.responses.create({
    model: "test/echo",
    input: "and then?",
    previous_response_id: first.id,
  });
  assert.equal(second.previous_response_id, first.id);
  assert.equal((await openai.responses.retrieve(first.id)).output_text, "You said: hello there");
  const items = await openai.responses.inputItems.list(second.id);
  assert.equal(items.data.length, 1);
  await openai.responses.delete(first.id);
  await assert.rejects(openai.responses.retrieve(first.id), OpenAI.NotFoundError);
});
