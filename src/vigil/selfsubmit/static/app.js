/* The self-submission page: hashes are made on this device (worker.js) and only they are
 * sent. Every text comes from the message catalogues in i18n/. */
(function () {
  "use strict";
  var LANGS = ["en", "zh-Hant", "zh-Hans", "ko", "ms"];
  var MAX_ITEMS = 20, MIN_QUALITY = 50;
  var api = (document.querySelector('meta[name="vigil-api"]').content || "").replace(/\/$/, "");
  var msgs = {}, items = [], nextId = 1, worker = null, recoveryUrl = null;
  var $ = function (id) { return document.getElementById(id); };

  function t(key, vars) {
    var s = msgs[key] || key;
    Object.keys(vars || {}).forEach(function (k) { s = s.split("{" + k + "}").join(vars[k]); });
    return s;
  }

  function pickLang() {
    var q = new URLSearchParams(location.search).get("lang");
    if (LANGS.indexOf(q) >= 0) return q;
    var nav = (navigator.language || "en");
    if (/^zh-(TW|HK|MO|Hant)/i.test(nav)) return "zh-Hant";
    if (/^zh/i.test(nav)) return "zh-Hans";
    if (/^ko/i.test(nav)) return "ko";
    if (/^ms/i.test(nav)) return "ms";
    return "en";
  }

  async function setLang(lang) {
    var r = await fetch("i18n/" + lang + ".json");
    msgs = await r.json();
    document.documentElement.lang = lang;
    $("lang").value = lang;
    document.querySelectorAll("[data-i18n]").forEach(function (el) {
      el.textContent = t(el.getAttribute("data-i18n"));
    });
    renderItems();
    document.body.setAttribute("data-ready", lang);
  }

  function say(id, key, vars) { $(id).textContent = key ? t(key, vars) : ""; }

  function renderItems() {
    var ul = $("items");
    ul.textContent = "";
    items.forEach(function (it) {
      var li = document.createElement("li");
      li.className = it.error ? "error" : "";
      var text = it.name + ": ";
      if (it.error) text += t("error." + it.error);
      else if (!it.result) text += t("item.hashing");
      else if (it.result.kind === "image") text += t("item.picture", { pdq: it.result.pdq.slice(0, 16) + "…" });
      else text += t("item.video", { sha256: it.result.sha256.slice(0, 16) + "…" });
      li.textContent = text;
      if (it.result && it.result.pdq) li.setAttribute("data-pdq", it.result.pdq);
      ul.appendChild(li);
    });
  }

  function getWorker() {
    if (!worker) {
      worker = new Worker("worker.js");
      worker.onmessage = function (ev) {
        var m = ev.data, it = items.find(function (x) { return x.id === m.id; });
        if (!it) return;
        if (!m.ok) it.error = m.code;
        else if (m.result.kind === "image" && m.result.quality < MIN_QUALITY) it.error = "flat";
        else it.result = m.result;
        renderItems();
      };
    }
    return worker;
  }

  function onFiles() {
    say("message");
    var files = Array.prototype.slice.call($("files").files);
    items = [];
    if (files.length > MAX_ITEMS) { say("message", "error.too-many", { n: MAX_ITEMS }); renderItems(); return; }
    files.forEach(function (f) {
      var it = { id: nextId++, name: f.name, result: null, error: null };
      items.push(it);
      getWorker().postMessage({ id: it.id, file: f });
    });
    renderItems();
  }

  function b64(buf) {
    var a = new Uint8Array(buf), s = "";
    for (var i = 0; i < a.length; i++) s += String.fromCharCode(a[i]);
    return btoa(s);
  }
  function unb64(s) {
    var bin = atob(s), a = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) a[i] = bin.charCodeAt(i);
    return a;
  }

  async function post(path, body) {
    var r;
    try {
      r = await fetch(api + "/submit/api/" + path, { method: "POST",
        headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    } catch (e) { return { error: "error.network" }; }
    var data = null;
    try { data = await r.json(); } catch (e) { data = null; }
    if (r.ok) return { data: data };
    var key = { 403: "error.wrong-pin", 413: "error.oversized", 429: "error.throttled" }[r.status];
    if (!key && data && data.code) key = "error." + data.code;
    return { error: key || "error.server" };
  }

  async function send() {
    say("message");
    var concern = document.querySelector('input[name="concern"]:checked');
    var ready = items.filter(function (x) { return x.result && !x.error; });
    if (!items.length || !ready.length) return say("message", "error.no-items");
    if (items.some(function (x) { return !x.result && !x.error; })) return say("message", "error.wait");
    if (items.some(function (x) { return x.error; })) return say("message", "error.fix-items");
    if (!concern) return say("message", "error.concern");
    if (!$("consent").checked) return say("message", "error.consent");
    $("send").disabled = true;
    try {
      var pair = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true,
                                                 ["sign", "verify"]);
      var spki = b64(await crypto.subtle.exportKey("spki", pair.publicKey));
      var pkcs8 = b64(await crypto.subtle.exportKey("pkcs8", pair.privateKey));
      var body = { concern: concern.value, consent: true, public_key: spki,
        items: ready.map(function (x) {
          var r = x.result, o = { kind: r.kind, md5: r.md5, sha256: r.sha256 };
          if (r.kind === "image") { o.pdq = r.pdq; o.quality = r.quality; }
          return o;
        }) };
      var res = await post("cases", body);
      if (res.error) { say("message", res.error); return; }
      $("case-number").textContent = res.data.case;
      $("case-pin").textContent = res.data.pin;
      var file = JSON.stringify({ vigil_self_case: res.data.case, alg: "ECDSA-P256", pkcs8: pkcs8 });
      if (recoveryUrl) URL.revokeObjectURL(recoveryUrl);
      recoveryUrl = URL.createObjectURL(new Blob([file], { type: "application/json" }));
      $("recovery").href = recoveryUrl;
      $("recovery").download = "vigil-" + res.data.case + ".json";
      $("done").hidden = false;
      $("done").focus();
      $("check-case").value = res.data.case;
    } finally {
      $("send").disabled = false;
    }
  }

  /* The proof for a check or withdrawal: the PIN, or the recovery file signing a challenge. */
  async function proof(action) {
    var number = $("check-case").value.trim();
    if (!number) return { error: "error.case" };
    var body = { case: number };
    var pin = $("check-pin").value.trim();
    if (pin) { body.pin = pin; return { body: body }; }
    var f = $("check-key").files[0];
    if (!f) return { error: "error.pin" };
    var key;
    try {
      var doc = JSON.parse(await f.text());
      key = await crypto.subtle.importKey("pkcs8", unb64(doc.pkcs8),
        { name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]);
    } catch (e) { return { error: "error.key-file" }; }
    var ch = await post("challenge", { case: number });
    if (ch.error) return ch;
    var text = "vigil-selfsubmit:" + action + ":" + number.replace(/\s+/g, "").toUpperCase() + ":" + ch.data.challenge;
    var sig = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, key, new TextEncoder().encode(text));
    body.challenge = ch.data.challenge;
    body.signature = b64(sig);
    return { body: body };
  }

  function showStatus(s) {
    $("st-state").textContent = t("state." + s.state);
    $("st-items").textContent = String(s.items);
    $("st-matches").textContent = String(s.matches);
    $("st-takedowns").textContent = String(s.takedowns);
    $("status-out").hidden = false;
  }

  async function check(action) {
    say("check-message");
    $("status-out").hidden = true;
    var p = await proof(action);
    if (p.error) return say("check-message", p.error);
    var res = await post(action, p.body);
    if (res.error) return say("check-message", res.error);
    showStatus(res.data);
    if (action === "withdraw") say("check-message", "withdraw.done");
  }

  document.addEventListener("DOMContentLoaded", function () {
    $("lang").addEventListener("change", function () { setLang($("lang").value); });
    $("files").addEventListener("change", onFiles);
    $("send").addEventListener("click", send);
    $("status").addEventListener("click", function () { check("status"); });
    $("withdraw").addEventListener("click", function () {
      $("withdraw-yes").hidden = false;
      say("check-message", "withdraw.confirm");
      $("withdraw-yes").focus();
    });
    $("withdraw-yes").addEventListener("click", function () {
      $("withdraw-yes").hidden = true;
      check("withdraw");
    });
    setLang(pickLang());
  });
})();
