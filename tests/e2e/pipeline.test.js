// `mpirun -np 2 seek serve`: the model's layers split into two pipeline stages, one per rank
// (rank 0 serves, rank 1 follows its forwards). The official openai client gets the answers the
// single-process server gives: greedy chat completions, streamed and not, and a second turn that
// reuses the first turn's cached prefix.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { startServer } from "./lib/server.js";

let one, two;
const clientOf = (srv) => new OpenAI({ baseURL: `${srv.base}/v1`, apiKey: "unused", maxRetries: 0, timeout: 120000 });
before(async () => {
  one = await startServer();
  two = await startServer([], { ranks: 2 });
});
after(async () => { await one.stop(); await two.stop(); });

const ask = async (srv, messages, stream) => {
  const req = { model: "deepseek-chat", messages, max_tokens: 24, temperature: 0 };
  if (!stream) return (await clientOf(srv).chat.completions.create(req)).choices[0].message.content;
  let text = "";
  for await (const c of await clientOf(srv).chat.completions.create({ ...req, stream: true }))
    text += c.choices[0]?.delta?.content ?? "";
  return text;
};

test("two pipeline stages answer as one process does", async () => {
  assert.match(two.log(), /rank 0 of 2: layers \[0, \d+\)/);
  const first = [{ role: "user", content: "Name three prime numbers." }];
  for (const stream of [false, true]) {
    const a = await ask(one, first, stream), b = await ask(two, first, stream);
    assert.ok(a.length > 0);
    assert.equal(b, a, `stream=${stream}`);
  }
  // A second turn: its prompt starts with the first turn's, which the engine takes from its cache.
  const second = [...first, { role: "assistant", content: await ask(one, first, false) },
    { role: "user", content: "And three more." }];
  assert.equal(await ask(two, second, false), await ask(one, second, false));
  const usage = (await clientOf(two).chat.completions.create(
    { model: "deepseek-chat", messages: second, max_tokens: 4, temperature: 0 })).usage;
  assert.ok(usage.prompt_cache_hit_tokens > 0, JSON.stringify(usage));
});
