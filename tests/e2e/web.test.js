// The web chat in headless Chromium (Debian's /usr/bin/chromium driven by playwright-core):
// send a message, watch the thinking panel and the answer fill, stop a generation, start a new
// chat, reload and find the conversation kept. Screenshots go to tests/e2e/artifacts/.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { startServer, script, artifacts } from "./lib/server.js";

const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
let srv, browser, context, page, profile;

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  srv = await startServer();
  profile = mkdtempSync(join(tmpdir(), "seek-e2e-chromium-"));
  // launchPersistentContext is how playwright takes a --user-data-dir.
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    viewport: { width: 1200, height: 800 },
  });
  page = context.pages()[0] || await context.newPage();
  page.on("pageerror", (e) => { throw e; });
});
after(async () => {
  await context?.close();
  await srv?.stop();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

// Forces the model's answer for the next chat request the page makes (test hooks).
async function forceNextAnswer(text) {
  await page.unroute("**/v1/chat/completions").catch(() => {});
  await page.route("**/v1/chat/completions", (route) =>
    route.continue({ headers: { ...route.request().headers(), ...script(text) } }));
}

test("reasoner: the thinking panel fills live, then the answer, then 'Thought for'", async () => {
  await page.goto(srv.base + "/");
  await page.click("#mode-reasoner");
  assert.equal(await page.inputValue("#model"), "deepseek-reasoner");
  const thinking = Array.from({ length: 40 }, (_, i) => `step ${i}: still thinking.`).join("\n");
  await forceNextAnswer(thinking + "\n</think>\n\nHere is the answer:\n\n```python\nprint(4)\n```\n\n**Done**.");
  await page.fill("#input", "What is 2 + 2?");
  await page.press("#input", "Enter");

  const panel = page.locator(".msg.assistant .thinking").last();
  await panel.locator(".thinking-body").filter({ hasText: "step 1:" }).waitFor({ timeout: 30000 });
  const liveSummary = await panel.locator("summary").textContent();
  const liveText = await panel.locator(".thinking-body").textContent();
  await page.screenshot({ path: join(artifacts, "web-thinking-live.png") });

  const answer = page.locator(".msg.assistant .answer").last();
  await answer.locator("pre code").waitFor({ timeout: 60000 });
  await page.locator("#send").waitFor({ state: "visible", timeout: 60000 });
  await page.screenshot({ path: join(artifacts, "web-answer.png") });

  // While streaming the panel said so and held part of the thinking; at the end, all of it.
  assert.match(liveSummary, /Thinking/);
  assert.ok(liveText.length > 0 && liveText.length <= thinking.length);
  assert.equal(await panel.locator(".thinking-body").textContent(), thinking);
  assert.match(await panel.locator("summary").textContent(), /^Thought for \d+\.\d seconds$/);
  // Markdown: the code block and the bold text are rendered, not shown as raw markup.
  assert.equal(await answer.locator("pre code").textContent(), "print(4)");
  assert.equal(await answer.locator("strong").textContent(), "Done");
  assert.ok(!(await answer.textContent()).includes("```"));
  // The panel is collapsible.
  await panel.locator("summary").click();
  assert.equal(await panel.evaluate((d) => d.open), false);
  await page.screenshot({ path: join(artifacts, "web-thinking-collapsed.png") });
});

test("stop button ends a generation and the server frees the sequence", async () => {
  await page.click("#new-chat");
  await page.click("#mode-chat");
  await page.unroute("**/v1/chat/completions").catch(() => {});
  if (!(await page.locator("#settings").evaluate((d) => d.open))) await page.click("#settings summary");
  await page.fill("#max-tokens", "8192");
  await page.dispatchEvent("#max-tokens", "change");
  await page.fill("#input", "Tell me a very long story.");
  await page.click("#send");
  await page.locator("#stop").waitFor({ state: "visible" });
  const answer = page.locator(".msg.assistant .answer").last();
  await page.waitForFunction(() => {
    const a = document.querySelectorAll(".msg.assistant .answer");
    return a.length && a[a.length - 1].textContent.length > 40;
  }, null, { timeout: 30000 });
  await page.click("#stop");
  await page.locator("#send").waitFor({ state: "visible" });
  await page.screenshot({ path: join(artifacts, "web-stopped.png") });
  assert.equal(await page.locator(".msg.assistant .meta").last().textContent(), "stopped");
  const stoppedText = await answer.textContent();
  assert.ok(stoppedText.length > 0);
  // The server cancels the sequence as soon as the connection drops.
  let active = -1;
  for (let i = 0; i < 50 && active !== 0; i++) {
    active = (await (await fetch(srv.base + "/health")).json()).active;
    if (active !== 0) await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(active, 0);
});

test("conversations are kept in the browser; new chat starts empty", async () => {
  await forceNextAnswer("Kept answer.");
  await page.click("#new-chat");
  assert.equal(await page.locator(".msg").count(), 0);
  await page.fill("#input", "Remember me");
  await page.press("#input", "Enter");
  await page.locator(".msg.assistant .answer", { hasText: "Kept answer." }).waitFor({ timeout: 30000 });
  await page.locator("#send").waitFor({ state: "visible" });
  await page.reload();
  await page.locator(".msg.user", { hasText: "Remember me" }).waitFor({ timeout: 10000 });
  assert.ok(await page.locator("#chat-list li").count() >= 3);
  await page.locator("#chat-list li", { hasText: "What is 2 + 2?" }).click();
  await page.locator(".msg.assistant .thinking summary", { hasText: "Thought for" }).waitFor();
  await page.screenshot({ path: join(artifacts, "web-history.png") });
});
