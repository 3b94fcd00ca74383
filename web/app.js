// The Seek web chat: talks to this server's /v1/chat/completions with stream: true, shows the
// reasoner's thinking live in a collapsible panel (then how long it thought), renders answers as
// Markdown, and keeps conversations in localStorage. No dependencies, no build step.
"use strict";

const $ = (sel) => document.querySelector(sel);
const STORE = "seek.chats.v1";
const SETTINGS = "seek.settings.v1";

const state = {
  chats: [],        // [{id, title, updated, messages: [{role, content, reasoning, thoughtSeconds, error}]}]
  current: null,    // id of the open chat
  models: [],       // from /v1/models: [{id, mode}]
  mode: "chat",
  controller: null, // AbortController of the running request
};

// ---- persistence ----
function load() {
  try { state.chats = JSON.parse(localStorage.getItem(STORE) || "[]"); } catch { state.chats = []; }
  try {
    const s = JSON.parse(localStorage.getItem(SETTINGS) || "{}");
    if (s.temperature !== undefined) $("#temperature").value = s.temperature;
    if (s.maxTokens) $("#max-tokens").value = s.maxTokens;
    if (s.system) $("#system-prompt").value = s.system;
    if (s.apiKey) $("#api-key").value = s.apiKey;
    if (s.mode) state.mode = s.mode;
    state.savedModel = s.model;
  } catch { /* defaults */ }
  $("#temperature-value").textContent = Number($("#temperature").value).toFixed(1);
}
function save() {
  localStorage.setItem(STORE, JSON.stringify(state.chats));
  localStorage.setItem(SETTINGS, JSON.stringify({
    temperature: $("#temperature").value, maxTokens: $("#max-tokens").value,
    system: $("#system-prompt").value, apiKey: $("#api-key").value, mode: state.mode,
    model: $("#model").value,
  }));
}
function chat() { return state.chats.find((c) => c.id === state.current); }
function newChat() {
  const c = { id: String(Date.now()) + Math.random().toString(16).slice(2, 6), title: "New chat",
              updated: Date.now(), messages: [] };
  state.chats.unshift(c);
  state.current = c.id;
  save();
  renderList();
  renderMessages();
  $("#input").focus();
}

// ---- models and mode ----
function headers() {
  const h = { "Content-Type": "application/json" };
  const key = $("#api-key").value.trim();
  if (key) h.Authorization = "Bearer " + key;
  return h;
}
async function loadModels() {
  try {
    const r = await fetch("v1/models", { headers: headers() });
    const j = await r.json();
    state.models = (j.data || []).map((m) => ({ id: m.id, mode: m.mode || "chat" }));
  } catch {
    state.models = [{ id: "deepseek-chat", mode: "chat" }, { id: "deepseek-reasoner", mode: "reasoner" }];
  }
  setMode(state.mode);
}
function setMode(mode) {
  state.mode = mode;
  document.querySelectorAll(".mode-btn").forEach((b) => b.classList.toggle("active", b.dataset.mode === mode));
  const sel = $("#model");
  sel.innerHTML = "";
  const fits = state.models.filter((m) => m.mode === mode);
  for (const m of (fits.length ? fits : state.models)) {
    const o = document.createElement("option");
    o.value = o.textContent = m.id;
    sel.appendChild(o);
  }
  if (state.savedModel && [...sel.options].some((o) => o.value === state.savedModel)) sel.value = state.savedModel;
  save();
}

// ---- rendering ----
function renderList() {
  const ul = $("#chat-list");
  ul.innerHTML = "";
  for (const c of state.chats) {
    const li = document.createElement("li");
    li.className = c.id === state.current ? "active" : "";
    const t = document.createElement("span");
    t.textContent = c.title;
    li.appendChild(t);
    const del = document.createElement("button");
    del.type = "button";
    del.title = "Delete";
    del.textContent = "\u00d7";
    del.onclick = (e) => {
      e.stopPropagation();
      state.chats = state.chats.filter((x) => x.id !== c.id);
      if (state.current === c.id) state.current = state.chats[0] ? state.chats[0].id : null;
      save();
      if (!state.current) newChat(); else { renderList(); renderMessages(); }
    };
    li.appendChild(del);
    li.onclick = () => { if (!state.controller) { state.current = c.id; renderList(); renderMessages(); } };
    ul.appendChild(li);
  }
}

function thinkingLabel(m, live) {
  if (live) return "Thinking";
  if (m.thoughtSeconds !== undefined) return "Thought for " + m.thoughtSeconds.toFixed(1) + " seconds";
  return "Thoughts";
}

// One message element; assistant messages get a thinking panel and a Markdown answer.
function messageEl(m) {
  const div = document.createElement("div");
  div.className = "msg " + m.role + (m.error ? " error" : "");
  if (m.role === "user") {
    const c = document.createElement("div");
    c.className = "content";
    c.textContent = m.content;
    div.appendChild(c);
    return div;
  }
  const details = document.createElement("details");
  details.className = "thinking";
  details.open = true;
  details.hidden = !m.reasoning;
  const summary = document.createElement("summary");
  summary.textContent = thinkingLabel(m, false);
  const body = document.createElement("div");
  body.className = "thinking-body";
  body.textContent = m.reasoning || "";
  details.append(summary, body);
  const answer = document.createElement("div");
  answer.className = "answer";
  answer.innerHTML = m.error ? "" : Markdown.render(m.content || "");
  if (m.error) answer.textContent = m.error;
  div.append(details, answer);
  if (m.meta) {
    const meta = document.createElement("div");
    meta.className = "meta";
    meta.textContent = m.meta;
    div.appendChild(meta);
  }
  return div;
}

function renderMessages() {
  const box = $("#messages");
  box.innerHTML = "";
  const c = chat();
  if (!c) return;
  for (const m of c.messages) box.appendChild(messageEl(m));
  box.scrollTop = box.scrollHeight;
}

// ---- sending ----
function setBusy(busy) {
  $("#send").hidden = busy;
  $("#stop").hidden = !busy;
  $("#status").textContent = busy ? "Generating\u2026" : "";
}

async function send(text) {
  const c = chat();
  if (!c || state.controller) return;
  c.messages.push({ role: "user", content: text });
  if (c.title === "New chat") c.title = text.slice(0, 40);
  const m = { role: "assistant", content: "", reasoning: "" };
  c.messages.push(m);
  c.updated = Date.now();
  save();
  renderList();
  renderMessages();

  const el = $("#messages").lastElementChild;
  const details = el.querySelector(".thinking");
  const summary = details.querySelector("summary");
  const thinkBody = details.querySelector(".thinking-body");
  const answer = el.querySelector(".answer");

  // The API never takes reasoning_content back: only roles and contents go out.
  const history = [];
  const system = $("#system-prompt").value.trim();
  if (system) history.push({ role: "system", content: system });
  for (const x of c.messages.slice(0, -1)) if (!x.error) history.push({ role: x.role, content: x.content });

  const body = {
    model: $("#model").value, messages: history, stream: true,
    stream_options: { include_usage: true },
    temperature: Number($("#temperature").value), max_tokens: Number($("#max-tokens").value),
  };
  state.controller = new AbortController();
  setBusy(true);
  let thinkStart = null;
  const finishThinking = () => {
    if (thinkStart !== null && m.thoughtSeconds === undefined) {
      m.thoughtSeconds = (performance.now() - thinkStart) / 1000;
      details.classList.remove("live");
      summary.textContent = thinkingLabel(m, false);
    }
  };
  let pending = false;
  const repaint = () => {  // at most once per frame: Markdown of a long answer is not free
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      answer.innerHTML = Markdown.render(m.content);
      const box = $("#messages");
      box.scrollTop = box.scrollHeight;
    });
  };
  try {
    const r = await fetch("v1/chat/completions", {
      method: "POST", headers: headers(), body: JSON.stringify(body), signal: state.controller.signal,
    });
    if (!r.ok) {
      let msg = r.status + " " + r.statusText;
      try { msg = (await r.json()).error.message; } catch { /* keep status */ }
      throw new Error(msg);
    }
    const reader = r.body.getReader();
    const decoder = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        if (!block.startsWith("data: ")) continue;  // ": keep-alive"
        const data = block.slice(6);
        if (data === "[DONE]") continue;
        const j = JSON.parse(data);
        if (j.error) throw new Error(j.error.message);
        if (j.usage) {
          const u = j.usage;
          m.meta = u.completion_tokens + " tokens" +
                   (u.completion_tokens_details && u.completion_tokens_details.reasoning_tokens
                     ? " (" + u.completion_tokens_details.reasoning_tokens + " thinking)" : "") +
                   (u.prompt_cache_hit_tokens ? ", " + u.prompt_cache_hit_tokens + " prompt tokens cached" : "");
        }
        const d = j.choices && j.choices[0] && j.choices[0].delta;
        if (!d) continue;
        if (d.reasoning_content) {
          if (thinkStart === null) {
            thinkStart = performance.now();
            details.hidden = false;
            details.classList.add("live");
            summary.textContent = thinkingLabel(m, true);
          }
          m.reasoning += d.reasoning_content;
          thinkBody.textContent = m.reasoning;
        }
        if (d.content) {
          finishThinking();
          m.content += d.content;
          repaint();
        }
      }
    }
  } catch (e) {
    if (e.name === "AbortError") {
      m.meta = "stopped";
    } else {
      m.error = String(e.message || e);
      if (!m.content) m.content = "";
    }
  } finally {
    finishThinking();
    state.controller = null;
    setBusy(false);
    save();
    const fresh = messageEl(m);
    el.replaceWith(fresh);
    $("#messages").scrollTop = $("#messages").scrollHeight;
  }
}

// ---- events ----
function init() {
  load();
  if (!state.chats.length) newChat();
  else { state.current = state.chats[0].id; renderList(); renderMessages(); }
  loadModels();
  $("#new-chat").onclick = () => { if (!state.controller) newChat(); };
  document.querySelectorAll(".mode-btn").forEach((b) => { b.onclick = () => setMode(b.dataset.mode); });
  $("#model").onchange = () => { state.savedModel = $("#model").value; save(); };
  $("#temperature").oninput = () => {
    $("#temperature-value").textContent = Number($("#temperature").value).toFixed(1);
    save();
  };
  for (const id of ["#max-tokens", "#system-prompt", "#api-key"]) $(id).onchange = save;
  $("#composer").onsubmit = (e) => {
    e.preventDefault();
    const text = $("#input").value.trim();
    if (!text) return;
    $("#input").value = "";
    send(text);
  };
  $("#input").onkeydown = (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      $("#composer").requestSubmit();
    }
  };
  $("#stop").onclick = () => { if (state.controller) state.controller.abort(); };
  $("#messages").onclick = (e) => {
    if (!e.target.classList.contains("copy")) return;
    const code = e.target.parentElement.querySelector("code");
    navigator.clipboard && navigator.clipboard.writeText(code.textContent);
    e.target.textContent = "Copied";
    setTimeout(() => { e.target.textContent = "Copy"; }, 1200);
  };
}

init();
