"""A web phone for `alap dev`: `GET /simulator`.

One self-contained page (HTML, inline CSS and vanilla JS; no build step, nothing fetched from
another host) that dials through the sandbox gateway's phone API on the same origin:

    POST {phone_api}/dial   {"address", "code"}                -> the first screen
    POST {phone_api}/reply  {"sessionId", "address", "message"} -> the next screen

so every hop goes through the server's real callback route and `/ussd/send`, exactly as
`alap sim` does. The page shows each screen with its character count, encoding and budget
(over-budget screens are highlighted), the end of the session (`mt-fin`) with a "Dial again"
button, and a log of every screen.

Language buttons: the subscriber's language lives in their profile, so switching it means
walking a real language menu. The page dials the demo (`language_code`, `*213#`), picks the
option whose label is "Language" (following "98. More" pages), then the option for the wanted
language, and leaves the phone on the main menu it lands on. It matches labels in both
languages rather than dialling a positional shortcut such as `*213*3*1#`: the language menu only
lists the language you are *not* using (so `*213*3*1#` toggles instead of setting), and option
numbers move whenever the main menu changes.
"""
from __future__ import annotations

import json

from aiohttp import web

SIMULATOR_PATH = "/simulator"
DEFAULT_PHONE_API = "/sandbox/bdapps/phone"

_HEADERS = {
    "Cache-Control": "no-store",
    # Everything is inline and same-origin: the page works on a machine with no internet.
    "Content-Security-Policy": ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                                "connect-src 'self'; img-src data:; font-src 'self'; base-uri 'none'; "
                                "form-action 'none'"),
    "X-Content-Type-Options": "nosniff",
}


def render_page(budgets: tuple[int, int], *, phone_api: str = DEFAULT_PHONE_API, code: str = "*213#",
                address: str = "tel:8801812345678", language_code: str = "*213#") -> str:
    """The page, with its configuration embedded as JSON (safe inside a <script> element)."""
    config = {
        "budgets": {"440": budgets[0], "16": budgets[1]},
        "phoneApi": phone_api.rstrip("/"),
        "code": code,
        "address": address,
        "languageCode": language_code,
    }
    data = json.dumps(config, ensure_ascii=True).replace("<", "\\u003c").replace(">", "\\u003e")
    return _PAGE.replace("__CONFIG__", data)


def add_simulator(app: web.Application, budgets: tuple[int, int], *, phone_api: str = DEFAULT_PHONE_API,
                  code: str = "*213#", address: str = "tel:8801812345678", language_code: str = "*213#") -> None:
    """Serve the web phone at `GET /simulator`. `budgets` is (encoding 440, encoding 16) in
    characters, as in the server's settings, so the page flags exactly what the server would."""
    page = render_page(budgets, phone_api=phone_api, code=code, address=address, language_code=language_code)

    async def simulator(request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html", charset="utf-8", headers=_HEADERS)

    app.router.add_get(SIMULATOR_PATH, simulator)


_PAGE = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>Alap simulator</title>
<style>
  /* The Bengali web font shipped with the package (server/fonts/, served at /fonts/ by
     server/admin/__init__.py): Bengali screens render on machines without Bengali fonts. */
  @font-face { font-family: "Noto Sans Bengali"; font-weight: 400; font-display: swap;
               src: url("/fonts/NotoSansBengali-Regular.ttf") format("truetype"); }
  :root {
    --bg: #eef1f4; --ink: #1d2329; --muted: #5d6873; --phone: #23282e; --lcd: #d9ead3;
    --lcd-ink: #17301a; --accent: #0b6e4f; --warn: #b3261e; --warn-bg: #fde7e5; --end: #6b4e00;
    --end-bg: #fff3cd; --line: #cfd6dd;
  }
  * { box-sizing: border-box; }
  body { margin: 0; background: var(--bg); color: var(--ink);
         font: 15px/1.4 system-ui, "Noto Sans Bengali", "Noto Sans", sans-serif; }
  header { padding: 12px 16px; background: var(--accent); color: #fff; }
  header h1 { margin: 0; font-size: 18px; font-weight: 600; }
  header p { margin: 2px 0 0; font-size: 13px; opacity: .9; }
  main { display: flex; flex-wrap: wrap; gap: 16px; padding: 16px; align-items: flex-start;
         max-width: 1000px; margin: 0 auto; }
  .phone { flex: 0 1 360px; width: 100%; max-width: 380px; background: var(--phone); color: #fff;
           border-radius: 24px; padding: 14px; box-shadow: 0 6px 20px rgba(0,0,0,.25); }
  .log-panel { flex: 1 1 300px; min-width: 0; background: #fff; border: 1px solid var(--line);
               border-radius: 12px; padding: 12px; }
  label { display: block; font-size: 12px; color: #c8d0d8; margin-bottom: 2px; }
  .dialer { display: grid; grid-template-columns: 3fr 2fr; gap: 8px; margin-bottom: 10px; }
  .dialer > div { min-width: 0; }
  input[type=text] { width: 100%; min-width: 0; padding: 8px; border-radius: 8px; border: 1px solid #6b7580;
                     font: inherit; font-size: 16px; background: #fff; color: var(--ink); }
  button { font: inherit; cursor: pointer; border-radius: 8px; border: 0; padding: 9px 12px;
           background: #3a424b; color: #fff; touch-action: manipulation; }
  button:hover:not(:disabled) { background: #4a545e; }
  button:disabled { opacity: .45; cursor: not-allowed; }
  button.primary { background: var(--accent); }
  button.primary:hover:not(:disabled) { background: #0d8460; }
  .row { display: flex; gap: 8px; margin: 8px 0; }
  .row > * { flex: 1 1 0; min-width: 0; }
  .screen { background: var(--lcd); color: var(--lcd-ink); border-radius: 10px; padding: 10px;
            min-height: 170px; border: 3px solid transparent; display: flex; flex-direction: column; }
  .screen.over { border-color: var(--warn); background: var(--warn-bg); }
  .screen.ended { border-color: #c9a227; }
  .screen.error { border-color: var(--warn); background: var(--warn-bg); color: var(--warn); }
  #screen-text { flex: 1; margin: 0; white-space: pre-wrap; overflow-wrap: anywhere; font: inherit;
                 font-size: 16px; }
  .meta { font-size: 12px; color: #3d5a40; border-top: 1px dashed #9cb79a; margin-top: 8px; padding-top: 4px;
          display: flex; flex-wrap: wrap; justify-content: space-between; gap: 4px; }
  .screen.over .meta { color: var(--warn); font-weight: 600; }
  .status { font-weight: 600; }
  .status.ended { color: var(--end); }
  .banner { margin: 8px 0 0; padding: 8px; border-radius: 8px; background: var(--end-bg); color: var(--end);
            font-weight: 600; display: flex; gap: 8px; align-items: center; justify-content: space-between; }
  .banner[hidden] { display: none; }
  .note { min-height: 1.4em; font-size: 13px; color: #c8d0d8; margin: 6px 0 0; }
  .note.bad { color: #ffb4ab; }
  .keypad { display: grid; grid-template-columns: repeat(3, 1fr); gap: 6px; margin-top: 8px; }
  .keypad button { font-size: 18px; padding: 10px 0; }
  .lang { display: flex; gap: 8px; margin-top: 10px; align-items: center; flex-wrap: wrap; }
  .lang span { font-size: 12px; color: #c8d0d8; }
  .lang button { flex: 1 1 0; }
  .log-head { display: flex; justify-content: space-between; align-items: center; gap: 8px; }
  .log-head h2 { font-size: 16px; margin: 0; }
  .log-head button { background: #e3e8ed; color: var(--ink); padding: 4px 10px; }
  #log { list-style: none; margin: 8px 0 0; padding: 0; max-height: 70vh; overflow: auto; }
  #log li { border-top: 1px solid var(--line); padding: 6px 2px; }
  #log li.log-dial { font-weight: 600; color: var(--accent); }
  #log li.log-input { color: var(--muted); }
  #log li.log-input::before { content: "\25B6  "; }
  #log li.log-error { color: var(--warn); }
  #log li.log-screen pre { margin: 0; white-space: pre-wrap; overflow-wrap: anywhere; font: inherit; }
  #log li.log-screen .m { font-size: 12px; color: var(--muted); }
  #log li.log-screen.over { background: var(--warn-bg); }
  #log li.log-screen.over .m { color: var(--warn); font-weight: 600; }
  #log li.log-screen.ended .m { color: var(--end); }
  @media (max-width: 430px) {
    main { padding: 8px; gap: 8px; }
    .phone { border-radius: 14px; padding: 10px; max-width: none; flex-basis: 100%; }
    .dialer { grid-template-columns: 1fr; }
    .keypad button { padding: 8px 0; }
  }
</style>
</head>
<body>
<header>
  <h1>Alap simulator</h1>
  <p>A phone on the sandbox BDApps gateway: every hop goes through the server's real callback route.</p>
</header>
<main>
  <section class="phone" aria-label="Phone">
    <div class="dialer">
      <div><label for="address">Subscriber address</label><input id="address" type="text" autocomplete="off" spellcheck="false"></div>
      <div><label for="code">USSD code</label><input id="code" type="text" autocomplete="off" spellcheck="false"></div>
    </div>
    <div class="row"><button id="dial" class="primary" type="button">Dial</button></div>
    <div id="screen" class="screen" aria-live="polite">
      <pre id="screen-text">Dial a code to start.</pre>
      <div class="meta"><span id="screen-meta"></span><span id="screen-status" class="status">Idle</span></div>
    </div>
    <div id="ended" class="banner" hidden>
      <span id="ended-text">Session ended (mt-fin)</span>
      <button id="dial-again" class="primary" type="button">Dial again</button>
    </div>
    <div class="row">
      <input id="reply" type="text" inputmode="text" autocomplete="off" placeholder="Your reply" aria-label="Reply" disabled>
      <button id="send" class="primary" type="button" style="flex:0 0 auto" disabled>Send</button>
    </div>
    <div class="keypad" id="keypad">
      <button type="button" data-key="1">1</button><button type="button" data-key="2">2</button><button type="button" data-key="3">3</button>
      <button type="button" data-key="4">4</button><button type="button" data-key="5">5</button><button type="button" data-key="6">6</button>
      <button type="button" data-key="7">7</button><button type="button" data-key="8">8</button><button type="button" data-key="9">9</button>
      <button type="button" data-key="*">*</button><button type="button" data-key="0">0</button><button type="button" data-key="#">#</button>
      <button type="button" id="backspace" aria-label="Delete last character">&#9003;</button>
      <button type="button" id="clear" aria-label="Clear reply">C</button>
      <button type="button" id="keypad-send" class="primary" aria-label="Send reply">OK</button>
    </div>
    <div class="lang"><span>Language:</span>
      <button type="button" id="lang-bn" lang="bn">বাংলা</button>
      <button type="button" id="lang-en">English</button>
    </div>
    <p id="note" class="note" role="status"></p>
  </section>
  <section class="log-panel" aria-label="Session log">
    <div class="log-head"><h2>Log</h2><button type="button" id="clear-log">Clear</button></div>
    <ol id="log"></ol>
  </section>
</main>
<script id="config" type="application/json">__CONFIG__</script>
<script>
"use strict";
(function () {
  const CONFIG = JSON.parse(document.getElementById("config").textContent);
  const $ = (id) => document.getElementById(id);
  const els = {
    address: $("address"), code: $("code"), dial: $("dial"), screen: $("screen"), text: $("screen-text"),
    meta: $("screen-meta"), status: $("screen-status"), ended: $("ended"), again: $("dial-again"),
    reply: $("reply"), send: $("send"), log: $("log"), note: $("note"),
  };
  // Labels of the language menu, in both catalogs' words (English msgid | Bengali msgstr).
  const LABELS = {
    language: /language|ভাষা/i,
    more: /^(more|আরও)$/i,
    mainMenu: /main menu|মূল মেনু/i,
    bn: /bangla|bengali|বাংলা/i,
    en: /english|ইংরেজি/i,
  };
  const LANG_NAMES = { bn: "বাংলা (Bangla)", en: "English" };

  let session = null;   // {sessionId, address, code}
  let ended = true;
  let busy = false;

  els.address.value = CONFIG.address;
  els.code.value = CONFIG.code;

  // Characters as the server counts them (Python len: code points, not UTF-16 units).
  function charCount(text) { return Array.from(text).length; }
  function encodingLabel(enc) {
    if (enc === "16") return "UCS-2 (16)";
    if (enc === "440") return "GSM-7 (440)";
    return "encoding " + (enc === undefined ? "?" : enc);
  }
  function describe(screen) {
    const text = screen.message || "";
    const enc = String(screen.encoding);
    const budget = CONFIG.budgets[enc] !== undefined ? CONFIG.budgets[enc] : CONFIG.budgets["16"];
    const count = charCount(text);
    const over = count > budget;
    let meta = count + " / " + budget + " chars \u00b7 " + encodingLabel(enc);
    if (over) meta += " \u00b7 over budget by " + (count - budget);
    return { text, count, budget, over, meta, final: screen.ussdOperation === "mt-fin" };
  }

  function setNote(message, bad) {
    els.note.textContent = message || "";
    els.note.classList.toggle("bad", !!bad);
  }
  function addLog(kind, content, extraClass) {
    const li = document.createElement("li");
    li.className = "log-" + kind + (extraClass ? " " + extraClass : "");
    if (kind === "screen") {
      const pre = document.createElement("pre");
      pre.textContent = content.text;
      const m = document.createElement("div");
      m.className = "m";
      m.textContent = content.meta + " \u00b7 " + (content.final ? "end (mt-fin)" : "reply expected (mt-cont)");
      li.append(pre, m);
    } else {
      li.textContent = content;
    }
    els.log.appendChild(li);
    els.log.scrollTop = els.log.scrollHeight;
  }
  function refreshControls() {
    const live = !!session && !ended;
    els.reply.disabled = busy || !live;
    els.send.disabled = busy || !live;
    document.querySelectorAll("#keypad button").forEach((b) => { b.disabled = busy || !live; });
    els.dial.disabled = busy;
    els.again.disabled = busy;
    $("lang-bn").disabled = busy;
    $("lang-en").disabled = busy;
    document.body.dataset.busy = busy ? "true" : "false";
  }
  function setBusy(value) { busy = value; refreshControls(); }

  // Show one screen (the /ussd/send body the server sent) on the phone and in the log.
  function render(screen) {
    const d = describe(screen);
    els.text.textContent = d.text;
    els.meta.textContent = d.meta;
    els.screen.classList.remove("error");
    els.screen.classList.toggle("over", d.over);
    els.screen.classList.toggle("ended", d.final);
    els.status.textContent = d.final ? "Session ended" : "Reply expected";
    els.status.classList.toggle("ended", d.final);
    $("ended-text").textContent = "Session ended (mt-fin)";
    els.ended.hidden = !d.final;
    ended = d.final;
    addLog("screen", d, (d.over ? "over" : "") + (d.final ? " ended" : ""));
    refreshControls();
    if (!d.final) els.reply.focus();
    return d;
  }
  function showError(message) {
    els.text.textContent = message;
    els.meta.textContent = "";
    els.screen.classList.remove("over", "ended");
    els.screen.classList.add("error");
    els.status.textContent = "Error";
    els.status.classList.remove("ended");
    $("ended-text").textContent = "Session broken off";
    els.ended.hidden = false;   // offer "Dial again": the session is unusable now
    ended = true;
    addLog("error", message);
    refreshControls();
  }

  async function call(path, body) {
    let response;
    try {
      response = await fetch(CONFIG.phoneApi + path, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      });
    } catch (err) {
      throw new Error("No answer from the server (" + err.message + "). Is `alap dev` running?");
    }
    const raw = await response.text();
    let data = null;
    try { data = JSON.parse(raw); } catch (err) { /* not JSON: reported below */ }
    if (!response.ok || !data || typeof data !== "object") {
      const detail = data && (data.error || data.statusDetail) ? (data.error || data.statusDetail) : raw.slice(0, 200);
      throw new Error("HTTP " + response.status + " from " + path + ": " + detail);
    }
    return data;
  }

  async function dial(code) {
    const address = els.address.value.trim() || CONFIG.address;
    code = (code || els.code.value).trim() || CONFIG.code;
    addLog("dial", "Dialled " + code + " from " + address);
    const screen = await call("/dial", { address, code });
    session = { sessionId: screen.sessionId, address, code };
    return render(screen);
  }
  async function reply(message) {
    if (!session || ended) throw new Error("No session: dial first.");
    addLog("input", message === "" ? "(empty reply)" : message);
    const screen = await call("/reply", { sessionId: session.sessionId, address: session.address, message });
    return render(screen);
  }
  // Run one user action with the controls locked, and errors shown instead of thrown.
  async function guarded(action) {
    if (busy) return;
    setBusy(true);
    try { await action(); } catch (err) { showError(err.message); } finally { setBusy(false); }
  }

  // "1. Label" lines of a menu screen.
  function options(text) {
    const found = [];
    for (const line of text.split("\n")) {
      const m = line.match(/^\s*(\d+)\s*[.)]\s*(.+?)\s*$/);
      if (m) found.push({ key: m[1], label: m[2] });
    }
    return found;
  }
  function findOption(text, pattern) { return options(text).find((o) => pattern.test(o.label)) || null; }

  // Walk the demo's language menu: dial, pick "Language" (through "More" pages), pick the language.
  async function switchLanguage(lang) {
    setNote("Switching to " + LANG_NAMES[lang] + " through the language menu of " + CONFIG.languageCode + " ...");
    let screen = await dial(CONFIG.languageCode);
    let option = findOption(screen.text, LABELS.language);
    for (let page = 0; !option && !screen.final && page < 5; page++) {
      const more = findOption(screen.text, LABELS.more);
      if (!more) break;
      screen = await reply(more.key);
      option = findOption(screen.text, LABELS.language);
    }
    if (!option || screen.final) {
      setNote("No \"Language\" option on " + CONFIG.languageCode + "; continue by hand.", true);
      return;
    }
    screen = await reply(option.key);
    const wanted = findOption(screen.text, LABELS[lang]);
    if (wanted && !screen.final) {
      await reply(wanted.key);
      setNote("Language set to " + LANG_NAMES[lang] + ".");
      return;
    }
    const other = findOption(screen.text, LABELS[lang === "bn" ? "en" : "bn"]);
    const home = findOption(screen.text, LABELS.mainMenu);
    if (other && !screen.final) {
      // The menu only offers the language you are not using: this subscriber already has it.
      if (home) await reply(home.key);
      setNote("Already in " + LANG_NAMES[lang] + ".");
      return;
    }
    setNote("Could not find " + LANG_NAMES[lang] + " in the language menu; continue by hand.", true);
  }

  function sendReply() {
    const message = els.reply.value;
    guarded(async () => { await reply(message); els.reply.value = ""; });
  }

  els.dial.addEventListener("click", () => guarded(async () => { setNote(""); await dial(); }));
  els.again.addEventListener("click", () => guarded(async () => {
    setNote("");
    await dial(session ? session.code : undefined);
  }));
  els.code.addEventListener("keydown", (e) => { if (e.key === "Enter") els.dial.click(); });
  els.address.addEventListener("keydown", (e) => { if (e.key === "Enter") els.dial.click(); });
  els.reply.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); sendReply(); } });
  els.send.addEventListener("click", sendReply);
  $("keypad-send").addEventListener("click", sendReply);
  document.querySelectorAll("#keypad button[data-key]").forEach((button) => {
    button.addEventListener("click", () => { els.reply.value += button.dataset.key; els.reply.focus(); });
  });
  $("backspace").addEventListener("click", () => {
    els.reply.value = Array.from(els.reply.value).slice(0, -1).join(""); els.reply.focus();
  });
  $("clear").addEventListener("click", () => { els.reply.value = ""; els.reply.focus(); });
  $("lang-bn").addEventListener("click", () => guarded(() => switchLanguage("bn")));
  $("lang-en").addEventListener("click", () => guarded(() => switchLanguage("en")));
  $("clear-log").addEventListener("click", () => { els.log.textContent = ""; });

  refreshControls();
  // For tests and the console: render a screen body without the server (e.g. to see the
  // over-budget highlight, which the real server never produces).
  window.alapSimulator = { render, describe, options, config: CONFIG };
})();
</script>
</body>
</html>
"""
