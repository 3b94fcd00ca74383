// `mpirun -np 2 seek serve`: the model's layers split into two pipeline stages, one per rank
// (rank 0 serves, rank 1 follows its forwards). The official openai client gets the answers the
// single-process server gives: greedy chat completions, streamed and not, and a second turn that
// reuses the first turn's cached prefix. So does `mpirun -np 2 seek serve --expert-ranks 2`: every
// layer on rank 0, the routed experts split between the two ranks.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { startServer } from "./lib/server.js";

let one, two, experts;
const clientOf = (srv) => new OpenAI({ baseURL: `${srv.base}/v1`, apiKey: "unused", maxRetries: 0, timeout: 120000 });
before(async () => {
  one = await startServer();
  two = await startServer([], { ranks: 2 });
  experts = await startServer(["--expert-ranks", "2"], { ranks: 2 });
});
after(async () => { await one.stop(); await two.stop(); await experts.stop(); });

const ask = async (srv, messages, stream) => {
  const req = { model: "deepseek-chat", messages, max_tokens: 24, temperature: 0 };
  if (!stream) return (await clientOf(srv).chat.completions.create(req)).choices[0].message.content;
  let text = "";
  for await (const c of await clientOf(srv).chat.completions.create({ ...req, stream: true }))
    text += c.choices[0]?.delta?.content ?? "";
  return text;
};

for (const [name, srv, layers] of [["two pipeline stages", () => two, /rank 0 of 2: layers \[0, \d+\)/],
  ["routed experts on two ranks", () => experts, /rank 1 of 2: layers \[0, \d+\) .* only routed experts \[\d+, \d+\)/]]) {
  test(`${name} answer as one process does`, async () => {
    const split = srv();
    assert.match(split.log(), layers);
    const first = [{ role: "user", content: "Name three prime numbers." }];
    for (const stream of [false, true]) {
      const a = await ask(one, first, stream), b = await ask(split, first, stream);
      assert.ok(a.length > 0);
      assert.equal(b, a, `stream=${stream}`);
    }
    // A second turn: its prompt starts with the first turn's, which the engine takes from its cache.
    const second = [...first, { role: "assistant", content: await ask(one, first, false) },
      { role: "user", content: "And three more." }];
    assert.equal(await ask(split, second, false), await ask(one, second, false));
    const usage = (await clientOf(split).chat.completions.create(
      { model: "deepseek-chat", messages: second, max_tokens: 4, temperature: 0 })).usage;
    assert.ok(usage.prompt_cache_hit_tokens > 0, JSON.stringify(usage));
  });
}
