// The official `openai` npm client against `seek serve`: chat (streaming and not), the
// reasoner's reasoning_content, usage, tools, FIM, models and errors.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { startServer, script } from "./lib/server.js";

let srv;
let client;
before(async () => {
  srv = await startServer();
  client = new OpenAI({ baseURL: `${srv.base}/v1`, apiKey: "unused", maxRetries: 0, timeout: 60000 });
});
after(async () => { await srv.stop(); });

const messages = [{ role: "system", content: "Be brief." }, { role: "user", content: "What is 2 + 2?" }];
const THINKING = "Two plus two.\nThat makes four.\n</think>\n\nThe answer is **4**.";

test("reasoner, non-streaming: reasoning_content, content and usage", async () => {
  const r = await client.chat.completions.create(
    { model: "deepseek-reasoner", messages }, { headers: script(THINKING) });
  assert.equal(r.object, "chat.completion");
  assert.equal(r.model, "deepseek-reasoner");
  const m = r.choices[0].message;
  assert.equal(m.role, "assistant");
  assert.equal(m.reasoning_content, "Two plus two.\nThat makes four.");
  assert.equal(m.content, "The answer is **4**.");
  assert.equal(r.choices[0].finish_reason, "stop");
  const u = r.usage;
  assert.equal(u.total_tokens, u.prompt_tokens + u.completion_tokens);
  assert.equal(u.prompt_cache_hit_tokens + u.prompt_cache_miss_tokens, u.prompt_tokens);
  assert.ok(u.completion_tokens_details.reasoning_tokens > 0);
  assert.ok(u.completion_tokens_details.reasoning_tokens < u.completion_tokens);
});

test("reasoner, streaming: role, then reasoning, then content, then usage", async () => {
  const stream = await client.chat.completions.create(
    { model: "deepseek-reasoner", messages, stream: true, stream_options: { include_usage: true } },
    { headers: script(THINKING) });
  const kinds = [];
  let reasoning = "", content = "", usage = null, finish = null, first = null;
  for await (const chunk of stream) {
    assert.equal(chunk.object, "chat.completion.chunk");
    if (chunk.usage) { usage = chunk.usage; assert.equal(chunk.choices.length, 0); continue; }
    const d = chunk.choices[0].delta;
    if (first === null) first = d;
    if (d.reasoning_content) { reasoning += d.reasoning_content; kinds.push("r"); }
    if (d.content) { content += d.content; kinds.push("c"); }
    if (chunk.choices[0].finish_reason) finish = chunk.choices[0].finish_reason;
  }
  assert.equal(first.role, "assistant");
  assert.equal(reasoning, "Two plus two.\nThat makes four.");
  assert.equal(content, "The answer is **4**.");
  assert.equal(finish, "stop");
  assert.ok(kinds.indexOf("c") > kinds.lastIndexOf("r"), "all reasoning comes before the answer");
  assert.ok(usage && usage.completion_tokens_details.reasoning_tokens > 0);
});

test("chat model: plain content, no reasoning, max_tokens ends with length", async () => {
  const r = await client.chat.completions.create(
    { model: "deepseek-chat", messages }, { headers: script("Four.") });
  assert.equal(r.choices[0].message.content, "Four.");
  assert.equal(r.choices[0].message.reasoning_content, undefined);
  const cut = await client.chat.completions.create({ model: "deepseek-chat", messages, max_tokens: 3 });
  assert.equal(cut.choices[0].finish_reason, "length");
  assert.equal(cut.usage.completion_tokens, 3);
  // Streaming without usage: no usage chunk.
  const stream = await client.chat.completions.create(
    { model: "deepseek-chat", messages, stream: true }, { headers: script("Hello, stream.") });
  let text = "";
  for await (const c of stream) {
    assert.ok(!c.usage);
    text += c.choices[0]?.delta?.content ?? "";
  }
  assert.equal(text, "Hello, stream.");
});

test("multi-turn reuses the prompt cache", async () => {
  const first = await client.chat.completions.create(
    { model: "deepseek-chat", messages }, { headers: script("Four.") });
  const next = [...messages, { role: "assistant", content: "Four." }, { role: "user", content: "And 3 + 3?" }];
  const r = await client.chat.completions.create({ model: "deepseek-chat", messages: next },
                                                 { headers: script("Six.") });
  assert.ok(r.usage.prompt_cache_hit_tokens >= first.usage.prompt_tokens - 1,
            JSON.stringify(r.usage));
});

test("function calling: tool_calls out, tool results back in", async () => {
  const tools = [{ type: "function", function: { name: "get_weather", description: "Weather of a city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } } }];
  const call = "<\uff5ctool\u2581calls\u2581begin\uff5c><\uff5ctool\u2581call\u2581begin\uff5c>function" +
               "<\uff5ctool\u2581sep\uff5c>get_weather\n```json\n{\"city\": \"Paris\"}\n```" +
               "<\uff5ctool\u2581call\u2581end\uff5c><\uff5ctool\u2581calls\u2581end\uff5c>";
  const r = await client.chat.completions.create({ model: "deepseek-chat", messages, tools },
                                                 { headers: script(call) });
  assert.equal(r.choices[0].finish_reason, "tool_calls");
  const tc = r.choices[0].message.tool_calls;
  assert.equal(tc.length, 1);
  assert.equal(tc[0].function.name, "get_weather");
  assert.deepEqual(JSON.parse(tc[0].function.arguments), { city: "Paris" });
  const back = await client.chat.completions.create({
    model: "deepseek-chat", tools,
    messages: [...messages, r.choices[0].message, { role: "tool", tool_call_id: tc[0].id, content: "18C" }],
  }, { headers: script("18C in Paris.") });
  assert.equal(back.choices[0].message.content, "18C in Paris.");
});

test("fill-in-the-middle through the beta base URL", async () => {
  const beta = new OpenAI({ baseURL: `${srv.base}/beta`, apiKey: "unused", maxRetries: 0 });
  const r = await beta.completions.create(
    { model: "deepseek-chat", prompt: "def add(a, b):\n", suffix: "\n    return c\n", max_tokens: 16 },
    { headers: script("    c = a + b") });
  assert.equal(r.object, "text_completion");
  assert.equal(r.choices[0].text, "    c = a + b");
});

test("models list", async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.ok(ids.includes("deepseek-chat") && ids.includes("deepseek-reasoner"), ids.join(","));
});

test("errors arrive as APIError with DeepSeek's status codes", async () => {
  await assert.rejects(
    client.chat.completions.create({ model: "deepseek-chat", messages, max_tokens: -1 }),
    (e) => e instanceof OpenAI.APIError && e.status === 422 && e.param === "max_tokens");
  await assert.rejects(
    client.chat.completions.create({ model: "deepseek-chat", messages, temperature: 5 }),
    (e) => e.status === 422 && e.param === "temperature");
  await assert.rejects(
    client.chat.completions.create({ model: "no-such-model", messages }),
    (e) => e instanceof OpenAI.NotFoundError && e.param === "model");
  await assert.rejects(
    client.chat.completions.create({ model: "deepseek-reasoner", messages, logprobs: true }),
    (e) => e instanceof OpenAI.BadRequestError);
  await assert.rejects(
    client.chat.completions.create({ model: "deepseek-reasoner",
      messages: [...messages, { role: "assistant", content: "4", reasoning_content: "2+2" },
                 { role: "user", content: "ok?" }] }),
    (e) => e.status === 400);
  // A streamed request that is refused up front fails before any chunk.
  await assert.rejects(
    client.chat.completions.create({ model: "deepseek-chat", messages, stream: true, max_tokens: 0 }),
    (e) => e.status === 422);
});

test("logprobs for the chat model", async () => {
  const r = await client.chat.completions.create(
    { model: "deepseek-chat", messages, max_tokens: 3, logprobs: true, top_logprobs: 2 });
  const lp = r.choices[0].logprobs.content;
  assert.equal(lp.length, 3);
  for (const e of lp) {
    assert.equal(typeof e.token, "string");
    assert.ok(e.logprob <= 0);
    assert.equal(e.top_logprobs.length, 2);
  }
});

test("API key: 401 without it, 200 with it", async () => {
  const keyed = await startServer(["--api-key", "sk-e2e-secret"]);
  try {
    const bad = new OpenAI({ baseURL: `${keyed.base}/v1`, apiKey: "sk-wrong", maxRetries: 0 });
    await assert.rejects(bad.chat.completions.create({ model: "deepseek-chat", messages, max_tokens: 1 }),
                         (e) => e instanceof OpenAI.AuthenticationError);
    // Retries: the pooled connection the 401 left may be closing (the test server's keep-alive
    // is 0.2 s) just as this request reuses it; the key is what this test checks.
    const good = new OpenAI({ baseURL: `${keyed.base}/v1`, apiKey: "sk-e2e-secret", maxRetries: 2 });
    const r = await good.chat.completions.create({ model: "deepseek-chat", messages, max_tokens: 1 });
    assert.equal(r.usage.completion_tokens, 1);
  } finally {
    await keyed.stop();
  }
});
