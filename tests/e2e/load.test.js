// A bounded load test on loopback: 64 concurrent streaming requests, each forced to its own
// text. Every request must end with a complete, unmixed response or a clean error; the server's
// memory must come back to its level after a warm-up round.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, script } from "./lib/server.js";

const N = 64;
let srv;
before(async () => { srv = await startServer(["--max-seqs", "16", "--queue", "64", "--timeout", "120"]); });
after(async () => { await srv.stop(); });

async function streamOne(i) {
  const expect = `Stream number ${i} says hello ${"and more ".repeat(i % 5)}end ${i}.`;
  const r = await fetch(srv.base + "/v1/chat/completions", {
    method: "POST",
    headers: { "Content-Type": "application/json", ...script(expect) },
    body: JSON.stringify({ model: "deepseek-chat", stream: true, stream_options: { include_usage: true },
                           messages: [{ role: "user", content: `Request ${i}: say something.` }] }),
  });
  if (r.status !== 200) return { i, status: r.status, error: await r.text() };
  const text = await r.text();
  let content = "", id = null, usage = null, done = false, error = null;
  for (const block of text.split("\n\n")) {
    if (!block.startsWith("data: ")) continue;
    const data = block.slice(6);
    if (data === "[DONE]") { done = true; continue; }
    const j = JSON.parse(data);
    if (j.error) { error = j.error; continue; }
    if (id === null) id = j.id;
    assert.equal(j.id, id, "one id per stream");
    if (j.usage) usage = j.usage;
    content += j.choices[0]?.delta?.content ?? "";
  }
  return { i, status: 200, content, expect, usage, done, error };
}

async function round() {
  const t0 = Date.now();
  const results = await Promise.all(Array.from({ length: N }, (_, i) => streamOne(i)));
  return { results, seconds: (Date.now() - t0) / 1000 };
}

test(`${N} concurrent streams: complete, unmixed, memory back to baseline`, { timeout: 300000 }, async () => {
  await round();  // warm-up: KV pages, thread stacks, allocator arenas reach their working size
  await srv.idle();
  const baseline = await srv.settledRssKb();
  const { results, seconds } = await round();
  let ok = 0;
  for (const r of results) {
    if (r.status !== 200 || r.error) {
      // A clean refusal is allowed under load; a broken or mixed stream is not.
      assert.ok([429, 503].includes(r.status) || r.error, JSON.stringify(r).slice(0, 300));
      continue;
    }
    assert.ok(r.done, `stream ${r.i} ended without [DONE]`);
    assert.equal(r.content, r.expect, `stream ${r.i} got another stream's text`);
    assert.ok(r.usage && r.usage.completion_tokens > 0);
    ok++;
  }
  assert.equal(ok, N, "with a queue of 64 every request is served");
  const health = await srv.idle();
  assert.equal(health.active, 0);
  assert.equal(health.queued, 0);
  const after = await srv.settledRssKb();
  console.log(`# ${N} streams in ${seconds.toFixed(1)} s; RSS ${baseline} kB -> ${after} kB`);
  assert.ok(after < baseline * 1.15 + 16384, `RSS grew from ${baseline} kB to ${after} kB`);
});
