// The official `ollama` npm client against `seek serve`'s Ollama API (/api/*): chat and
// generate (streaming and not), think on the reasoner, format json, tools, options.seed,
// list, show, ps, version and errors.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Ollama } from "ollama";
import { startServer, script } from "./lib/server.js";

let srv;
// A client whose answers are forced to `text` (test hooks), or free when text is omitted.
const client = (text) => new Ollama({ host: srv.base, headers: text === undefined ? {} : script(text) });
before(async () => { srv = await startServer(); });
after(async () => { await srv.stop(); });

const messages = [{ role: "system", content: "Be brief." }, { role: "user", content: "What is 2 + 2?" }];
const THINKING = "Two plus two.\nThat makes four.\n</think>\n\nThe answer is **4**.";
const CALL = "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n" +
  "{\"city\": \"Paris\"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>";

function assertDone(r, model, reason = "stop") {
  assert.equal(r.model, model);
  assert.equal(r.done, true);
  assert.equal(r.done_reason, reason);
  assert.ok(!Number.isNaN(Date.parse(r.created_at)), r.created_at);
  for (const k of ["total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration",
    "eval_count", "eval_duration"])
    assert.ok(Number.isInteger(r[k]) && r[k] >= 0, `${k}: ${r[k]}`);
  assert.ok(r.prompt_eval_count > 5 && r.eval_count > 0);
}

test("chat, non-streaming: think returns the thinking apart from the content", async () => {
  const r = await client(THINKING).chat({ model: "deepseek-reasoner", messages, think: true });
  assert.equal(r.message.role, "assistant");
  assert.equal(r.message.thinking, "Two plus two.\nThat makes four.");
  assert.equal(r.message.content, "The answer is **4**.");
  assertDone(r, "deepseek-reasoner");
});

test("chat, streaming: thinking parts, then content parts, then the closing part", async () => {
  const stream = await client(THINKING).chat({ model: "deepseek-reasoner", messages, think: true, stream: true });
  let thinking = "", content = "", last = null;
  const kinds = [];
  for await (const part of stream) {
    if (part.message.thinking) { thinking += part.message.thinking; kinds.push("t"); }
    if (part.message.content) { content += part.message.content; kinds.push("c"); }
    last = part;
  }
  assert.equal(thinking, "Two plus two.\nThat makes four.");
  assert.equal(content, "The answer is **4**.");
  assert.ok(kinds.indexOf("c") > kinds.lastIndexOf("t"), "all thinking comes before the answer");
  assertDone(last, "deepseek-reasoner");
});

test("think false: the reasoner answers without thinking", async () => {
  const r = await client("Four.").chat({ model: "deepseek-reasoner", messages, think: false });
  assert.equal(r.message.content, "Four.");
  assert.equal(r.message.thinking, undefined);
  // A chat-mode model cannot be asked to think.
  await assert.rejects(client().chat({ model: "deepseek-chat", messages, think: true }),
    (e) => e.status_code === 400 && /does not support thinking/.test(e.message));
});

test("generate: response, streaming and not, with the context to continue from", async () => {
  const r = await client("Four.").generate({ model: "deepseek-chat", prompt: "What is 2 + 2?", system: "Be brief." });
  assert.equal(r.response, "Four.");
  assertDone(r, "deepseek-chat");
  assert.ok(Array.isArray(r.context) && r.context.length > r.prompt_eval_count);
  const stream = await client("Six.").generate({ model: "deepseek-chat", prompt: "And 3 + 3?", context: r.context, stream: true });
  let text = "", last = null;
  for await (const part of stream) { text += part.response; last = part; }
  assert.equal(text, "Six.");
  assert.ok(last.done && last.prompt_eval_count > r.context.length);
  // The reasoner's thinking arrives in `thinking`.
  const t = await client(THINKING).generate({ model: "deepseek-reasoner", prompt: "What is 2 + 2?", think: true });
  assert.equal(t.thinking, "Two plus two.\nThat makes four.");
  assert.equal(t.response, "The answer is **4**.");
});

test("format json: the answer is one JSON object", async () => {
  const r = await client().chat({ model: "deepseek-chat", messages, format: "json",
    options: { temperature: 0, num_predict: 60 } });
  assert.ok(r.message.content.startsWith("{"), r.message.content);
  if (r.done_reason === "stop") assert.equal(typeof JSON.parse(r.message.content), "object");
  // A schema cannot be held by the constraint: refused, not ignored.
  await assert.rejects(client().chat({ model: "deepseek-chat", messages, format: { type: "object" } }),
    (e) => e.status_code === 400 && /JSON schemas/.test(e.message));
});

test("tools: tool_calls with object arguments, and the result back in", async () => {
  const tools = [{ type: "function", function: { name: "get_weather", description: "Weather of a city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } } }];
  const ask = [{ role: "user", content: "Weather in Paris?" }];
  const r = await client("Let me check." + CALL).chat({ model: "deepseek-chat", messages: ask, tools });
  assert.equal(r.message.content, "Let me check.");
  assert.equal(r.message.tool_calls.length, 1);
  assert.equal(r.message.tool_calls[0].function.name, "get_weather");
  assert.deepEqual(r.message.tool_calls[0].function.arguments, { city: "Paris" });
  const back = await client("It is 18C in Paris.").chat({ model: "deepseek-chat", tools,
    messages: [...ask, r.message, { role: "tool", tool_name: "get_weather", content: "18C" }] });
  assert.equal(back.message.content, "It is 18C in Paris.");
});

test("options: seed reproduces a sample, num_predict and stop end it", async () => {
  const options = { seed: 42, temperature: 1, top_k: 40, top_p: 0.9, num_predict: 8 };
  const a = await client().chat({ model: "deepseek-chat", messages, options });
  const b = await client().chat({ model: "deepseek-chat", messages, options });
  assert.equal(a.message.content, b.message.content);
  assert.equal(a.done_reason, "length");
  assert.equal(a.eval_count, 8);
  const s = await client("Hello world!").generate({ model: "deepseek-chat", prompt: "Hi", options: { stop: ["wor"] } });
  assert.equal(s.response, "Hello ");
  assert.equal(s.done_reason, "stop");
});

test("list, ps, show and version", async () => {
  const o = client();
  const { models } = await o.list();
  assert.deepEqual(models.map((m) => m.name).slice(1), ["deepseek-chat:latest", "deepseek-reasoner:latest"]);
  for (const m of models) {
    assert.equal(m.details.family, "deepseek2");
    assert.match(m.digest, /^[0-9a-f]{64}$/);
    assert.ok(m.size > 0 && m.details.parameter_size && m.details.quantization_level);
  }
  const ps = await o.ps();
  assert.equal(ps.models.length, models.length);
  const show = await o.show({ model: "deepseek-reasoner" });
  assert.equal(show.model_info["general.architecture"], "deepseek2");
  assert.ok(show.model_info["deepseek2.block_count"] > 0);
  assert.ok(show.model_info["deepseek2.expert_count"] > 0);
  assert.ok(show.capabilities.includes("thinking"));
  assert.ok(show.template.length > 0);
  const { version } = await o.version();
  assert.match(version, /^\d+\.\d+\.\d+$/);
});

test("errors arrive as ResponseError with Ollama's status codes", async () => {
  await assert.rejects(client().chat({ model: "llama3", messages }),
    (e) => e.name === "ResponseError" && e.status_code === 404 && e.message === 'model "llama3" not found');
  await assert.rejects(client().show({ model: "llama3" }), (e) => e.status_code === 404);
  await assert.rejects(client().chat({ model: "deepseek-chat", messages, options: { temperature: 9 } }),
    (e) => e.status_code === 400 && /options\.temperature/.test(e.message));
  await assert.rejects(client().generate({ model: "deepseek-chat", prompt: "What is this?", images: ["aGk="] }),
    (e) => e.status_code === 400 && /images/.test(e.message));
});
