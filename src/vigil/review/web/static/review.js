/* Vigil review: keys, the held reveal, lowered blur and heartbeats. No library, no eval,
   no request outside this origin. Every action is also a plain button or link. */
(function () {
  "use strict";
  var token = (document.querySelector('meta[name="review-token"]') || {}).content || "";
  /* where the app is mounted: "" for `vigil review`, "/review/NAME" inside `vigil serve` */
  var base = (document.querySelector('meta[name="review-base"]') || {}).content || "";
  var statusEl = document.getElementById("status");
  var help = document.getElementById("help");
  var LEVEL_NAMES = ["clear", "light", "medium", "strong (default)"];

  function say(text) { if (statusEl) { statusEl.textContent = text; } }

  function post(url, data, keepalive) {
    return fetch(url, {
      method: "POST", credentials: "same-origin", keepalive: !!keepalive,
      headers: {"Content-Type": "application/json", "X-Review-Token": token,
                "Accept": "application/json"},
      body: JSON.stringify(data)
    });
  }

  function typing(el) {
    return el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT");
  }

  if (help) {
    var opener = document.getElementById("help-open");
    if (opener) { opener.addEventListener("click", function () { help.showModal(); }); }
  }

  /* ---- the break screen: count down, then back to the queue ---- */
  var brk = document.getElementById("break");
  if (brk) {
    var wait = parseInt(brk.getAttribute("data-wait") || "0", 10);
    var waitEl = document.getElementById("break-wait");
    if (wait > 0) {
      var t = setInterval(function () {
        wait -= 1;
        if (waitEl) { waitEl.textContent = String(Math.max(0, wait)); }
        if (wait <= 0) { clearInterval(t); location.href = base + "/"; }
      }, 1000);
    }
  }

  var unit = document.getElementById("unit");
  if (!unit) {
    document.addEventListener("keydown", function (e) {
      if (typing(document.activeElement) || e.ctrlKey || e.metaKey || e.altKey) { return; }
      if (e.key === "?") { if (help) { help.showModal(); } e.preventDefault(); }
      else if (e.key === "e" || e.key === "E") { location.href = base + "/export"; }
      else if (e.key === "m" || e.key === "M") { location.href = base + "/me"; }
    });
    return;
  }

  var pos = unit.getAttribute("data-pos");
  var DEFAULT = parseInt(unit.getAttribute("data-default-level"), 10);
  var revealMax = parseFloat(unit.getAttribute("data-reveal-seconds")) * 1000;
  var img = document.getElementById("focus-img");
  var caption = document.getElementById("focus-caption");
  var levelName = document.getElementById("level-name");
  var members = Array.prototype.slice.call(document.querySelectorAll("button.member"));
  var focus = parseInt(unit.getAttribute("data-focus"), 10);
  var level = DEFAULT;
  var light = null;   /* {id, timer}: the open lightly-blurred session */
  var reveal = null;  /* {id, timers, pending, ended}: the held reveal */

  function src(lv, sid) {
    return base + "/item/" + focus + "/image?level=" + lv + (sid ? "&session=" + sid : "");
  }

  /* A video's keyframes: a strip under the picture, each at the picture's blur, inside
     the same counted viewing session. Rebuilt when another item is focused. */
  var strip = document.getElementById("frames");

  function framesOf(id) {
    for (var i = 0; i < members.length; i++) {
      if (parseInt(members[i].getAttribute("data-item"), 10) === id) {
        return parseInt(members[i].getAttribute("data-frames") || "0", 10);
      }
    }
    return 0;
  }

  function paint(lv, sid, what) {
    img.src = src(lv, sid);
    if (!strip) { return; }
    var n = framesOf(focus);
    if (strip.getAttribute("data-item") !== String(focus)) {
      while (strip.firstChild) { strip.removeChild(strip.firstChild); }
      for (var k = 0; n > 1 && k < n; k++) {
        var li = document.createElement("li");
        var f = document.createElement("img");
        f.width = 84; f.height = 84;
        li.appendChild(f);
        strip.appendChild(li);
      }
      strip.setAttribute("data-item", String(focus));
    }
    strip.hidden = n < 2;
    Array.prototype.forEach.call(strip.querySelectorAll("img"), function (f, k) {
      f.src = src(lv, sid) + "&frame=" + k;
      f.alt = "keyframe " + (k + 1) + " of " + n + ", " + what + " greyscale picture";
    });
  }

  /* A 403: at an exposure cap, the break screen; otherwise say why (e.g. a stale page). */
  function breakScreen(resp) {
    if (resp.status !== 403) { return false; }
    resp.json().then(function (b) {
      if (String(b.type || "").indexOf("exposure-cap") >= 0) { location.href = base + "/break"; }
      else { say(String(b.detail || "Refused.")); }
    }, function () { say("Refused."); });
    return true;
  }

  function showLevel() {
    paint(level, light ? light.id : null, LEVEL_NAMES[level]);
    img.alt = "item " + focus + ", " + LEVEL_NAMES[level] + " greyscale picture";
    levelName.textContent = LEVEL_NAMES[level];
  }

  /* ---- lowered blur: a counted session, kept alive by heartbeats ---- */
  function stopLight(keepalive) {
    if (!light) { return; }
    clearInterval(light.timer);
    post(base + "/view/stop", {session: light.id}, keepalive);
    light = null;
  }

  function openLight(lv) {
    stopLight(false);
    return post(base + "/view/start", {item: focus, level: lv}).then(function (r) {
      if (breakScreen(r)) { return false; }
      if (!r.ok) { say("The blur could not be lowered."); return false; }
      return r.json().then(function (s) {
        light = {id: s.session, timer: setInterval(function () {
          if (!light) { return; }
          var id = light.id;
          post(base + "/view/beat", {session: id}).then(function (b) {
            if (breakScreen(b)) { return; }
            return b.json().then(function (o) {
              if (!o.open && light && light.id === id) {
                clearInterval(light.timer); light = null; level = DEFAULT; showLevel();
                say("Blur back to strong: the viewing session ended.");
              }
            });
          });
        }, 2000)};
        return true;
      });
    });
  }

  function setLevel(lv) {
    lv = Math.max(1, Math.min(DEFAULT, lv));
    if (lv === level) { return; }
    if (lv === DEFAULT) {
      stopLight(false); level = DEFAULT; showLevel(); say("Blur: strong (default)."); return;
    }
    openLight(lv).then(function (ok) {
      if (ok) { level = lv; showLevel(); say("Blur lowered: " + LEVEL_NAMES[lv] + " (counted)."); }
    });
  }

  /* ---- the held reveal ---- */
  function endReveal(why) {
    if (!reveal) { return; }
    var r = reveal;
    reveal = null;
    r.timers.forEach(function (t) { clearInterval(t); clearTimeout(t); });
    if (r.id) { post(base + "/view/stop", {session: r.id}, true); }
    r.ended = true;
    document.getElementById("reveal").setAttribute("aria-pressed", "false");
    if (level < DEFAULT) { level = DEFAULT; }
    showLevel();
    say("Clear view ended" + (why ? " (" + why + ")" : "") + ".");
  }

  function startReveal() {
    if (reveal) { return; }
    stopLight(false);
    var r = {id: null, timers: [], ended: false};
    reveal = r;
    document.getElementById("reveal").setAttribute("aria-pressed", "true");
    post(base + "/view/start", {item: focus, level: 0}).then(function (resp) {
      if (breakScreen(resp)) { reveal = null; return; }
      if (!resp.ok) { reveal = null; say("Clear view refused."); return; }
      return resp.json().then(function (s) {
        r.id = s.session;
        if (r.ended || reveal !== r) { post(base + "/view/stop", {session: s.session}, true); return; }
        paint(0, s.session, "clear");
        img.alt = "item " + focus + ", clear greyscale picture";
        levelName.textContent = LEVEL_NAMES[0];
        say("Clear view, at most " + s.max_seconds + " seconds.");
        r.timers.push(setInterval(function () {
          post(base + "/view/beat", {session: s.session}).then(function (b) {
            if (breakScreen(b)) { return; }
            return b.json().then(function (o) { if (!o.open) { endReveal("time limit"); } });
          });
        }, 1000));
        r.timers.push(setTimeout(function () { endReveal("time limit"); },
                                 Math.min(revealMax, s.max_seconds * 1000)));
      });
    });
  }

  var revealBtn = document.getElementById("reveal");
  revealBtn.addEventListener("pointerdown", function (e) { e.preventDefault(); startReveal(); });
  revealBtn.addEventListener("pointerup", function () { endReveal(); });
  revealBtn.addEventListener("pointerleave", function () { endReveal(); });
  revealBtn.addEventListener("keydown", function (e) {
    if ((e.key === " " || e.key === "Enter") && !e.repeat) { e.preventDefault(); startReveal(); }
  });
  revealBtn.addEventListener("keyup", function (e) {
    if (e.key === " " || e.key === "Enter") { e.preventDefault(); endReveal(); }
  });
  document.getElementById("blur-lower").addEventListener("click", function () { setLevel(level - 1); });
  document.getElementById("blur-raise").addEventListener("click", function () { setLevel(level + 1); });

  window.addEventListener("blur", function () { endReveal("left the window"); });
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) {
      endReveal("tab hidden");
      if (light) { stopLight(true); level = DEFAULT; showLevel(); }
    }
  });
  window.addEventListener("pagehide", function () { endReveal(); stopLight(true); });

  /* ---- moving between the items of a step ---- */
  function setFocus(id) {
    endReveal();
    if (light) { stopLight(false); }
    level = DEFAULT;
    focus = id;
    members.forEach(function (m) {
      var on = parseInt(m.getAttribute("data-item"), 10) === id;
      m.classList.toggle("current", on);
      m.setAttribute("aria-current", on ? "true" : "false");
      if (on) { caption.textContent = "item " + id + " · " + m.getAttribute("data-name"); }
    });
    Array.prototype.forEach.call(document.querySelectorAll("input.item-field"), function (f) {
      f.value = String(id);
    });
    img.setAttribute("data-item", String(id));
    showLevel();
    say("Item " + id + ".");
  }

  members.forEach(function (m) {
    m.addEventListener("click", function () { setFocus(parseInt(m.getAttribute("data-item"), 10)); });
  });

  function step(delta) {
    var ids = members.map(function (m) { return parseInt(m.getAttribute("data-item"), 10); });
    var i = ids.indexOf(focus);
    var j = i + delta;
    if (j >= 0 && j < ids.length) { setFocus(ids[j]); }
    else { say(delta > 0 ? "Last item of this step." : "First item of this step."); }
  }

  /* ---- deciding ---- */
  var decideForm = document.getElementById("decide-form");
  var scopeBox = document.getElementById("scope-group");

  function submitWith(button, group) {
    if (scopeBox) { scopeBox.checked = !!group; }
    endReveal(); stopLight(true);
    decideForm.requestSubmit(button);
  }

  function categoryKey(e) {
    var m = /^(?:Digit|Numpad)([0-9])$/.exec(e.code || "");
    return m ? m[1] : null;
  }

  function openSeries() {
    var input = document.getElementById("series-name");
    if (input) { input.focus(); say("Type a series name (existing ones are suggested), then Enter."); }
  }

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) { return; }
    if (typing(document.activeElement)) {
      if (e.key === "Escape") { document.activeElement.blur(); }
      return;
    }
    if (help && help.open) { return; }
    var k = e.key;
    var digit = categoryKey(e);
    if (digit !== null) {
      var btn = decideForm.querySelector('button[data-key="' + digit + '"]');
      if (btn) { e.preventDefault(); submitWith(btn, e.shiftKey); }
      else { say("No category on key " + digit + " in this scheme; press ? for the keys."); }
      return;
    }
    if (k === "v" || k === "V") { if (!e.repeat) { startReveal(); } e.preventDefault(); return; }
    if (e.repeat) { return; }
    if (k === "n" || k === "N") { e.preventDefault(); submitWith(document.getElementById("not-relevant"), e.shiftKey); }
    else if (k === "g" || k === "G") {
      var ag = document.getElementById("apply-group");
      if (ag && !ag.disabled) { e.preventDefault(); endReveal(); stopLight(true); document.getElementById("group-form").requestSubmit(ag); }
      else { say("Apply to group: decide one item of this group first (or Shift + a number)."); }
    }
    else if (k === "j" || k === "J" || k === "ArrowRight" || k === "ArrowDown") { e.preventDefault(); step(1); }
    else if (k === "k" || k === "K" || k === "ArrowLeft" || k === "ArrowUp") { e.preventDefault(); step(-1); }
    else if (k === "]" || k === "PageDown") {
      var nx = unit.getAttribute("data-next");
      if (nx) { location.href = base + "/unit/" + nx; } else { say("This is the last open step."); }
    }
    else if (k === "[" || k === "PageUp") {
      var pv = unit.getAttribute("data-prev");
      if (pv) { location.href = base + "/unit/" + pv; } else { say("This is the first open step."); }
    }
    else if (k === "s" || k === "S") { e.preventDefault(); openSeries(); }
    else if (k === "u" || k === "U") { e.preventDefault(); endReveal(); stopLight(true); document.getElementById("undo-form").requestSubmit(); }
    else if (k === "-" || k === "_") { e.preventDefault(); setLevel(level - 1); }
    else if (k === "+" || k === "=") { e.preventDefault(); setLevel(level + 1); }
    else if (k === "?" || k === "h" || k === "H") { e.preventDefault(); if (help) { help.showModal(); } }
    else if (k === "e" || k === "E") { location.href = base + "/export"; }
    else if (k === "m" || k === "M") { location.href = base + "/me"; }
  });

  document.addEventListener("keyup", function (e) {
    if (e.key === "v" || e.key === "V") { endReveal(); }
  });

  if (pos !== null) { unit.setAttribute("data-ready", "1"); }
})();
