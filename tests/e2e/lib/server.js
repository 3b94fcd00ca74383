// Starts `seek serve` on a random-weight tiny model that speaks the real DeepSeek-V3 tokenizer,
// for the end-to-end tests. The model is built once per test process with `seek make-model`.
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, existsSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
export const root = resolve(here, "../../..");
export const seekBin = process.env.SEEK_BIN || join(root, "build", "seek");
export const artifacts = join(root, "tests", "e2e", "artifacts");

let modelDir = null;
export function tinyModel() {
  if (modelDir) return modelDir;
  if (!existsSync(seekBin)) throw new Error(`seek binary not found at ${seekBin} (set SEEK_BIN)`);
  const dir = mkdtempSync(join(tmpdir(), "seek-e2e-model-"));
  execFileSync(seekBin, ["make-model", dir, "--preset", "tiny-v3", "--vocab", "129280", "--mtp", "0",
    "--tokenizer", join(root, "tests", "fixtures", "tokenizer", "deepseek-v3")], { stdio: "pipe" });
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  modelDir = dir;
  return dir;
}

// Resolves when the server prints its address. `args` are extra `seek serve` flags; `ranks` > 1
// runs it under mpirun, the model's layers split into that many pipeline stages.
export async function startServer(args = [], { ranks = 1 } = {}) {
  const serve = ["serve", tinyModel(), "--port", "0", "--test-hooks", "--ctx", "2048",
    "--keepalive", "0.2", ...args];
  const proc = ranks > 1
    ? spawn("mpirun", ["--allow-run-as-root", "--oversubscribe", "--mca", "btl", "self,vader",
      "-np", String(ranks), seekBin, ...serve], { stdio: ["ignore", "ignore", "pipe"] })
    : spawn(seekBin, serve, { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  const port = await new Promise((resolvePort, reject) => {
    const timer = setTimeout(() => reject(new Error("seek serve did not start:\n" + log)), 30000);
    proc.stderr.on("data", (d) => {
      log += d.toString();
      const m = log.match(/listening on http:\/\/[\d.]+:(\d+)/);
      if (m) { clearTimeout(timer); resolvePort(Number(m[1])); }
    });
    proc.on("exit", (code) => { clearTimeout(timer); reject(new Error(`seek serve exited (${code}):\n${log}`)); });
  });
  proc.removeAllListeners("exit");
  const base = `http://127.0.0.1:${port}`;
  return {
    proc, port, base,
    log: () => log,
    rssKb: () => Number(readFileSync(`/proc/${proc.pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/)[1]),
    // RSS once it has settled: read (with a request between reads) until two agree within 2%.
    async settledRssKb() {
      let prev = this.rssKb();
      for (let i = 0; i < 20; i++) {
        await (await fetch(base + "/health")).text();
        const now = this.rssKb();
        if (Math.abs(now - prev) <= prev * 0.02) return now;
        prev = now;
      }
      return prev;
    },
    // Waits until nothing is queued or running (bounded: throws after `ms`).
    async idle(ms = 30000) {
      const end = Date.now() + ms;
      for (;;) {
        const h = await (await fetch(base + "/health")).json();
        if (h.active === 0 && h.queued === 0) return h;
        if (Date.now() > end) throw new Error("the server is still busy: " + JSON.stringify(h));
        await sleep(20);
      }
    },
    async stop() {
      if (proc.exitCode !== null) return proc.exitCode;
      const exited = new Promise((r) => proc.on("exit", (code, sig) => r(code ?? sig)));
      proc.kill("SIGTERM");
      const t = setTimeout(() => proc.kill("SIGKILL"), 15000);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
  };
}

// The X-Seek-Test-Script header forcing a random-weight model's answer (test hooks only).
// Non-ASCII is \u-escaped: header values are bytes, JSON escapes are not.
export function script(text) {
  const json = JSON.stringify(text).replace(/[\u007f-\uffff]/g,
    (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
  return { "X-Seek-Test-Script": json };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
