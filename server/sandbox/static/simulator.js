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
