// Plain HTTP against `seek serve`, curl style: malformed bodies, wrong types, limits, slow
// clients, static files, keep-alives while queued, and metrics.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { startServer, script, sleep } from "./lib/server.js";

let srv;
before(async () => { srv = await startServer(["--max-body", "0.05", "--max-seqs", "1", "--cache-slots", "0", "--queue", "2"]); });
after(async () => { await srv.stop(); });

async function post(path, body, headers = {}) {
  const r = await fetch(srv.base + path, {
    method: "POST", headers: { "Content-Type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, json, text, headers: r.headers };
}

function assertError(res, status, param) {
  assert.equal(res.status, status, res.text);
  assert.ok(res.json && res.json.error, res.text);
  const e = res.json.error;
  assert.equal(typeof e.message, "string");
  assert.equal(typeof e.type, "string");
  assert.ok("param" in e && "code" in e);
  if (param) {
    assert.equal(e.param, param);
    assert.ok(e.message.includes(param), e.message);
  }
}

// Sends raw bytes, returns the raw response (or what arrived before the server closed). The
// socket is not half-closed: some servers treat an early FIN as an abort.
function raw(bytes, { delayMs = 0, chunks = null } = {}) {
  return new Promise((resolve) => {
    const s = net.connect(srv.port, "127.0.0.1");
    let out = "";
    const timer = setTimeout(() => s.destroy(), 20000);
    s.on("data", (d) => { out += d.toString(); });
    s.on("close", () => { clearTimeout(timer); resolve(out); });
    s.on("error", () => {});
    s.on("connect", async () => {
      if (chunks) {
        for (const c of chunks) { s.write(c); await sleep(delayMs); }
      } else {
        s.write(bytes);
      }
    });
  });
}

const chat = (extra = {}) => ({ model: "deepseek-chat", messages: [{ role: "user", content: "hi" }], max_tokens: 2, ...extra });

test("bad JSON, wrong shapes and wrong types", async () => {
  assertError(await post("/v1/chat/completions", "{\"model\": \"deepseek-chat\", "), 400);
  assertError(await post("/v1/chat/completions", "not json at all"), 400);
  assertError(await post("/v1/chat/completions", "[1, 2, 3]"), 400);
  assertError(await post("/v1/chat/completions", ""), 400);
  assertError(await post("/v1/chat/completions", chat({ max_tokens: -5 })), 422, "max_tokens");
  assertError(await post("/v1/chat/completions", chat({ max_tokens: "ten" })), 422, "max_tokens");
  assertError(await post("/v1/chat/completions", chat({ temperature: [1] })), 422, "temperature");
  assertError(await post("/v1/chat/completions", chat({ messages: [{ role: "user", content: 5 }] })), 422,
              "messages[0].content");
  assertError(await post("/v1/chat/completions", chat({ stream: 1 })), 422, "stream");
  assertError(await post("/v1/chat/completions", chat({ stop: "" })), 422, "stop");
  // Unknown fields are ignored, as the API does.
  const ok = await post("/v1/chat/completions", chat({ some_future_field: true, user: "u1" }));
  assert.equal(ok.status, 200, ok.text);
});

test("body, header and URI limits", async () => {
  const big = chat({ messages: [{ role: "user", content: "x".repeat(200000) }] });
  assertError(await post("/v1/chat/completions", big), 413);
  const res = await raw("GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: " + "a".repeat(20000) + "\r\n\r\n");
  assert.ok(!res.startsWith("HTTP/1.1 200"), res.slice(0, 80));
  const uri = await raw("GET /" + "a".repeat(20000) + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  assert.ok(!uri.startsWith("HTTP/1.1 200"), uri.slice(0, 80));
  assert.equal((await fetch(srv.base + "/health")).status, 200);
});

test("unknown paths and path traversal answer 404 in the error shape", async () => {
  for (const p of ["/v2/chat", "/../CMakeLists.txt", "/..%2F..%2Fetc%2Fpasswd", "/%2e%2e/%2e%2e/etc/passwd",
                   "/web/app.js", "/app.js/../../CMakeLists.txt"]) {
    const r = await raw(`GET ${p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    assert.match(r, /^HTTP\/1\.1 (404|400)/, p + ": " + r.slice(0, 60));
    assert.ok(!r.includes("cmake_minimum_required") && !r.includes("root:"), p);
  }
  const page = await fetch(srv.base + "/");
  assert.equal(page.status, 200);
  assert.match(await page.text(), /<title>Seek chat<\/title>/);
  assert.equal((await fetch(srv.base + "/app.js")).status, 200);
});

test("a slow client does not block others and is cut off", async () => {
  // Headers dribbled one byte every 50 ms; meanwhile the server keeps answering.
  const slow = raw(null, { chunks: "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n".split(""), delayMs: 50 });
  const t0 = Date.now();
  const r = await fetch(srv.base + "/health");
  assert.equal(r.status, 200);
  assert.ok(Date.now() - t0 < 1000);
  await slow;
  // A client that sends half a body and stops is dropped after the read timeout.
  const half = await raw("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
                         "Content-Length: 1000\r\n\r\n{\"model\":");
  assert.ok(!half.startsWith("HTTP/1.1 200"));
});

test("queued requests get keep-alives; a full queue answers 429", async () => {
  // The engine is held (test hooks) while the queue fills, so nothing can leave it meanwhile.
  const hold = async (what) => assert.equal((await fetch(srv.base + "/test/engine/" + what, { method: "POST" })).status, 200);
  await hold("pause");
  // Two fill the queue (--queue 2); they stream keep-alive comments while waiting. The first
  // one's client gives up once it has seen a keep-alive (a client disconnect for the metrics).
  const ctrl = new AbortController();
  const open = (headers, signal) => fetch(srv.base + "/v1/chat/completions", {
    method: "POST", headers: { "Content-Type": "application/json", ...headers }, signal,
    body: JSON.stringify(chat({ stream: true })),
  });
  // Reads a stream until `until` is in what arrived; returns all of it.
  const readUntil = async (res, until) => {
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let text = "";
    while (!text.includes(until)) {
      const { value, done } = await reader.read();
      if (done) break;
      text += dec.decode(value, { stream: true });
    }
    return { text, reader };
  };
  const leaving = await open(script("never sent"), ctrl.signal);
  const waiting = await open(script("done"));
  const health = await (await fetch(srv.base + "/health")).json();
  assert.equal(health.queued, 2);
  const full = await post("/v1/chat/completions", chat());
  assertError(full, 429);
  assert.ok(Number(full.headers.get("retry-after")) >= 1, "429 without Retry-After");
  const first = await readUntil(waiting, ": keep-alive");
  assert.ok(first.text.includes(": keep-alive"), first.text.slice(0, 200));
  await readUntil(leaving, ": keep-alive");
  ctrl.abort();
  // The server notices the client that left when a write to it fails: while the engine is held
  // the request stays queued and keeps getting keep-alives, so this happens before the resume
  // (the metrics test below relies on it).
  let noticed = false;
  for (let i = 0; i < 300 && !noticed; i++) {
    noticed = /seek_client_disconnects_total [1-9]/.test(await (await fetch(srv.base + "/metrics")).text());
    if (!noticed) await sleep(100);
  }
  assert.ok(noticed, "the disconnected client was not noticed within 30 s of keep-alives");
  await hold("resume");
  let body = first.text;
  for (;;) {
    const { value, done } = await first.reader.read();
    if (done) break;
    body += new TextDecoder().decode(value);
  }
  assert.ok(body.includes("\"content\":\"done\""), body.slice(-400));
  assert.ok(body.trimEnd().endsWith("data: [DONE]"));
});

test("metrics in Prometheus text format", async () => {
  const r = await fetch(srv.base + "/metrics");
  assert.equal(r.status, 200);
  const m = await r.text();
  for (const name of ["seek_requests_total", "seek_prompt_tokens_total", "seek_completion_tokens_total",
                      "seek_queue_depth", "seek_time_to_first_token_seconds_bucket",
                      "seek_inter_token_latency_seconds_bucket", "seek_client_disconnects_total"])
    assert.ok(m.includes(name), name);
  assert.match(m, /seek_requests_total\{endpoint="chat_completions",status="429"\} [1-9]/);
  // The queue test above held the engine until the client that left was counted.
  assert.match(m, /seek_client_disconnects_total [1-9]/);
});
