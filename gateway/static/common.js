// Shared by every page: language, strings from /i18n.json, API calls, time formatting.
"use strict";

const EC = (() => {
  const LANG_KEY = "eldercare.lang";
  let strings = {};
  let lang = localStorage.getItem(LANG_KEY) ||
    ((navigator.language || "").toLowerCase().startsWith("zh") ? "zh-CN" : "en");

  function t(key, vars) {
    let s = (strings[lang] && strings[lang][key]) || (strings.en && strings.en[key]) || key;
    if (vars) for (const [k, v] of Object.entries(vars)) s = s.split("{" + k + "}").join(v);
    return s;
  }

  function applyStatic(root) {
    (root || document).querySelectorAll("[data-i18n]").forEach((el) => {
      el.textContent = t(el.dataset.i18n);
    });
    (root || document).querySelectorAll("[data-i18n-placeholder]").forEach((el) => {
      el.placeholder = t(el.dataset.i18nPlaceholder);
    });
    document.documentElement.lang = lang;
  }

  async function loadStrings() {
    const resp = await fetch("/i18n.json", { credentials: "same-origin" });
    strings = await resp.json();
    applyStatic();
  }

  function setLang(next) {
    lang = next;
    localStorage.setItem(LANG_KEY, next);
    applyStatic();
    document.dispatchEvent(new CustomEvent("langchange"));
  }

  function toggleLang() { setLang(lang === "zh-CN" ? "en" : "zh-CN"); }

  // The session cookie is HttpOnly; its CSRF companion is readable and is echoed in a
  // header on every state-changing request (see gateway/security.py).
  function csrfToken() {
    const m = document.cookie.match(/(?:^|;\s*)eldercare_csrf=([^;]*)/);
    return m ? decodeURIComponent(m[1]) : "";
  }

  async function api(path, options) {
    const opts = Object.assign({ credentials: "same-origin", headers: {} }, options || {});
    const method = (opts.method || "GET").toUpperCase();
    if (method !== "GET" && method !== "HEAD") opts.headers["X-CSRF-Token"] = csrfToken();
    if (opts.json !== undefined) {
      opts.body = JSON.stringify(opts.json);
      opts.headers["Content-Type"] = "application/json";
      delete opts.json;
    }
    const resp = await fetch(path, opts);
    if (resp.status === 401) {
      location.href = "/login?next=" + encodeURIComponent(location.pathname);
      throw new Error("not signed in");
    }
    if (!resp.ok) {
      let detail = resp.statusText;
      try { detail = (await resp.json()).detail; } catch (e) { /* not JSON */ }
      throw new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
    }
    return resp.status === 204 ? null : resp.json();
  }

  function pad(n) { return String(n).padStart(2, "0"); }
  // Times show in one zone: the browser's, or a site's (the family page uses the home's).
  let zone;
  function parts(ts) {
    const fmt = new Intl.DateTimeFormat("en-GB", {
      timeZone: zone, hourCycle: "h23", month: "numeric", day: "numeric",
      hour: "2-digit", minute: "2-digit", second: "2-digit" });
    const out = {};
    for (const p of fmt.formatToParts(new Date(ts * 1000))) out[p.type] = p.value;
    return out;
  }
  function setZone(z) { zone = z || undefined; }
  // "YYYY-MM-DDTHH:MM" of an instant in the zone: a datetime-local input's value.
  function localIso(ts) {
    const fmt = new Intl.DateTimeFormat("en-GB", {
      timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit" });
    const p = {};
    for (const x of fmt.formatToParts(new Date(ts * 1000))) p[x.type] = x.value;
    return p.year + "-" + p.month + "-" + p.day + "T" + p.hour + ":" + p.minute;
  }
  function hhmm(ts) { const p = parts(ts); return p.hour + ":" + p.minute; }
  function hhmmss(ts) { const p = parts(ts); return p.hour + ":" + p.minute + ":" + p.second; }
  function dateTime(ts) { const p = parts(ts); return p.month + "/" + p.day + " " + p.hour + ":" + p.minute; }
  function duration(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    return h ? h + ":" + pad(m) + ":" + pad(s) : m + ":" + pad(s);
  }
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "style") node.style.cssText = v;  // CSSOM: allowed by the page's CSP
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  async function signOut() {
    try { await api("/api/auth/logout", { method: "POST" }); } finally { location.href = "/login"; }
  }

  // Home hazards have their own icon and words everywhere: not a fall, not an SOS.
  const HAZARD_ICONS = {
    smoke: "🔥", gas: "💨", carbon_monoxide: "⚠️", water_leak: "💧", heat: "🌡️", cold: "❄️",
  };

  function isHazard(kind) { return Object.prototype.hasOwnProperty.call(HAZARD_ICONS, kind); }

  // The icon and the "home hazard" badge before a hazard's kind (nothing for other kinds).
  function hazardMark(kind) {
    if (!isHazard(kind)) return null;
    return el("span", { class: "hazard-mark", title: t("hazard.badge") },
      el("span", { class: "hazard-icon", "aria-hidden": "true" }, HAZARD_ICONS[kind]),
      el("span", { class: "hazard-badge" }, t("hazard.badge")));
  }

  // What to do about a hazard, in the reader's language (null for other kinds).
  function hazardAdvice(kind) {
    if (!isHazard(kind)) return null;
    return el("p", { class: "hazard-advice" },
      el("strong", {}, t("hazard.todo") + (lang === "zh-CN" ? "：" : ": ")),
      t("hazard.advice." + kind));
  }

  // A page that reloads its whole list when its live stream (re)connects: changes streamed
  // while the list is on its way are held and applied on top of it, in order. The list
  // may have been read before them; applied as they came, a change (an SOS, a dispatched
  // order) vanished when the older list arrived.
  function streamGate(apply) {
    let held = null;
    return {
      take(change) { if (held) held.push(change); else apply(change); },
      async reload(load) {
        held = held || [];
        try {
          await load();
        } finally {
          const changes = held || [];
          held = null;
          changes.forEach(apply);
        }
      },
    };
  }

  return {
    streamGate,
    isHazard, hazardMark, hazardAdvice,
    t, loadStrings, setLang, toggleLang, api, setZone, localIso, hhmm, hhmmss, dateTime, duration, el,
    signOut,
    get lang() { return lang; },
  };
})();
