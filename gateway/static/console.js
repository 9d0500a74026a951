// The operator console: queue, detail, actions, live stream, sound.
"use strict";
(() => {
  const { t, api, el, hhmmss, hhmm, duration, dateTime } = EC;
  const SEV_RANK = { critical: 0, high: 1, medium: 2, warning: 3, info: 4 };
  const MUTE_SECONDS = 5 * 60;
  const alerts = new Map();     // id -> alert
  let selectedId = null;
  let me = null;
  let mutedUntil = 0;
  let audio = null;
  let source = null;
  let connState = "connecting";
  let lastSeq = null;
  const flashing = new Set();  // critical alerts not yet acknowledged since this page saw them
  const gate = EC.streamGate((change) => applyChange(change));  // the queue's reloads

  // ---- queue --------------------------------------------------------------
  function sorted() {
    return [...alerts.values()].sort((a, b) =>
      (SEV_RANK[a.severity] - SEV_RANK[b.severity]) || (a.raised_at - b.raised_at));
  }

  // An emergency that reached the platform long after it happened (details.late_s).
  function lateBadge(a) {
    const late = a.details && Number(a.details.late_s);
    if (!late || late < 60) return null;
    return el("span", { class: "late-badge" }, t("alert.late", { minutes: Math.round(late / 60) }));
  }

  function timerClass(alert, now) {
    if (alert.handling !== "open") return "acked";
    const waited = now - alert.raised_at;
    return waited >= 60 ? "late" : waited >= 30 ? "warn" : "ok";
  }

  // "pressed again" / "fell again": a new press or fall re-raised an acknowledged alert.
  function againBadge(a) {
    const again = a.details && a.details.re_raised;
    if (!again || a.handling !== "open") return null;
    return el("span", { class: "again" }, t("again." + again.what));
  }

  function renderQueue() {
    const list = document.getElementById("queue");
    const now = Date.now() / 1000;
    list.replaceChildren(...sorted().map((a) => {
      const where = [a.site_name || a.site_id, a.room_name].filter(Boolean).join(" · ");
      const timer = a.handling === "open"
        ? el("span", { class: "timer " + timerClass(a, now), "data-raised": a.raised_at }, duration(now - a.raised_at))
        : el("span", { class: "timer acked" }, t("handling." + a.handling));
      return el("li", {
        class: ["row", "sev-" + a.severity, a.id === selectedId ? "selected" : "",
                flashing.has(a.id) ? "flash" : ""].concat(EC.isHazard(a.kind) ? ["hazard"] : []).join(" "),
        "data-id": a.id, tabindex: 0,
        onclick: () => select(a.id),
      },
        el("span", { class: "sev-bar" }),
        el("div", { class: "row-main" },
          el("div", { class: "row-top" },
            el("span", { class: "sev-label" }, t("severity." + a.severity)),
            EC.hazardMark(a.kind),
            el("strong", { class: "kind" }, t("kind." + a.kind)),
            lateBadge(a),
            againBadge(a),
            el("span", { class: "resident" }, a.resident_name || "")),
          el("div", { class: "row-sub" }, el("span", {}, where), el("span", { class: "time" }, hhmmss(a.raised_at)))),
        timer);
    }));
    document.getElementById("queue-empty").hidden = alerts.size > 0;
  }

  function tick() {
    const now = Date.now() / 1000;
    document.querySelectorAll(".timer[data-raised]").forEach((node) => {
      const raised = Number(node.dataset.raised);
      node.textContent = duration(now - raised);
      node.classList.remove("ok", "warn", "late");
      const waited = now - raised;
      node.classList.add(waited >= 60 ? "late" : waited >= 30 ? "warn" : "ok");
    });
    renderMute();
  }

  // ---- sound --------------------------------------------------------------
  function ensureAudio() {
    if (!audio) {
      const Ctx = window.AudioContext || window.webkitAudioContext;
      if (Ctx) audio = new Ctx();
    }
    if (audio && audio.state === "suspended") audio.resume();
  }

  function beep() {
    if (!audio || audio.state !== "running" || Date.now() / 1000 < mutedUntil) return;
    const now = audio.currentTime;
    for (const [i, freq] of [[0, 880], [1, 660], [2, 880]]) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, now + i * 0.25);
      gain.gain.exponentialRampToValueAtTime(0.4, now + i * 0.25 + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, now + i * 0.25 + 0.22);
      osc.connect(gain).connect(audio.destination);
      osc.start(now + i * 0.25);
      osc.stop(now + i * 0.25 + 0.24);
    }
  }

  function renderMute() {
    const btn = document.getElementById("mute");
    const left = mutedUntil - Date.now() / 1000;
    if (!audio || audio.state !== "running") {
      btn.textContent = t("action.sound_on");
      btn.className = "sound-off";
    } else if (left > 0) {
      btn.textContent = t("action.muted", { m: Math.floor(left / 60), s: String(Math.floor(left % 60)).padStart(2, "0") });
      btn.className = "muted";
    } else {
      btn.textContent = t("action.mute");
      btn.className = "";
    }
  }

  // Flashing critical alerts keep sounding every few seconds until acknowledged.
  setInterval(() => {
    for (const id of [...flashing]) {
      const a = alerts.get(id);
      if (!a || a.handling !== "open") flashing.delete(id);
    }
    if (flashing.size) beep();
  }, 3000);

  // ---- live stream --------------------------------------------------------
  function setConn(state) {
    connState = state;
    const badge = document.getElementById("conn");
    badge.className = "conn " + state;
    badge.textContent = t("stream." + state + (state === "lost" ? "_short" : ""));
    const banner = document.getElementById("conn-banner");
    banner.hidden = state !== "lost";
    banner.textContent = t("stream.lost");
    document.body.classList.toggle("disconnected", state === "lost");
  }

  function connect() {
    if (source) source.close();
    source = new EventSource("/api/stream");
    source.addEventListener("hello", async () => {
      const wasLost = connState !== "live";
      setConn("live");
      if (wasLost) await loadQueue();  // a fresh page or a long outage: reload the whole queue
    });
    source.addEventListener("alert", (ev) => {
      const change = JSON.parse(ev.data);
      lastSeq = change.seq;
      gate.take(change);
    });
    source.addEventListener("signed-out", () => { location.href = "/login?next=/console"; });
    source.onerror = () => {
      setConn("lost");
      if (source.readyState === EventSource.CLOSED) {
        // The browser gave up (e.g. an HTTP error): retry ourselves, and check the session.
        setTimeout(async () => { try { await api("/api/auth/me"); } catch (e) { return; } connect(); }, 3000);
      }
    };
  }

  function applyChange(change) {
    const a = change.alert;
    const before = alerts.get(a.id);
    // New, or open again (a second press or fall re-raised an acknowledged alert).
    const news = !before || before.handling !== "open";
    if (a.handling === "resolved") {
      alerts.delete(a.id);
      flashing.delete(a.id);
    } else {
      alerts.set(a.id, a);
      if (a.severity === "critical" && a.handling === "open" && news) {
        flashing.add(a.id);
        beep();
      }
      if (a.handling !== "open") flashing.delete(a.id);
    }
    renderQueue();
    if (a.id === selectedId) loadDetail(a.id);
    if (!selectedId && alerts.size) select(sorted()[0].id);
    scheduleOverview();
  }

  // ---- data ---------------------------------------------------------------
  // Evidence in the reader's language: phrases and values from the server, the
  // detector's English summary only when no phrase is known for it.
  function evidenceText(e) {
    if (!e.phrases || !e.phrases.length) return e.summary;
    return e.phrases.map((p) => {
      const v = Object.assign({}, p.values);
      if (v.measure) v.measure = t("vital." + v.measure);
      if (v.unit) v.unit = t("unit." + v.unit);
      return t("evidence." + p.key, v);
    }).join(EC.lang === "zh-CN" ? "；" : "; ");
  }
  function evidenceSource(e) {
    const device = e.device_kind ? t("device_kind." + e.device_kind) + (e.device_id ? " " + e.device_id : "") : e.device_id;
    return [e.room_name || e.room_id, device].filter(Boolean).join(" · ");
  }

  async function loadQueue() {
    await gate.reload(async () => {
      const list = await api("/api/alerts?handling=open&handling=acknowledged");
      alerts.clear();
      for (const a of list) {
        alerts.set(a.id, a);
        // Critical alerts still waiting when the page (re)loads call for attention too.
        if (a.severity === "critical" && a.handling === "open") flashing.add(a.id);
      }
      if (flashing.size) beep();
    });
    renderQueue();
    if (selectedId && !alerts.has(selectedId)) selectedId = null;
    if (!selectedId && alerts.size) select(sorted()[0].id);
    await loadOverview();
  }

  let overviewTimer = null;
  function scheduleOverview() {
    clearTimeout(overviewTimer);
    overviewTimer = setTimeout(loadOverview, 500);
  }

  async function loadOverview() {
    const o = await api("/api/overview?tz=" + encodeURIComponent(Intl.DateTimeFormat().resolvedOptions().timeZone || "Asia/Shanghai"));
    document.getElementById("st-sites").textContent = o.sites_monitored;
    document.getElementById("st-offline").textContent = o.sites_offline;
    document.getElementById("st-offline-box").classList.toggle("bad", o.sites_offline > 0);
    const counts = document.getElementById("st-open");
    // Only the severities that have alerts: a glance shows what is waiting.
    const present = ["critical", "high", "medium", "warning", "info"].filter((s) => o.open_by_severity[s]);
    counts.replaceChildren(...(present.length ? present.map((s) =>
      el("span", { class: "count sev-" + s, title: t("severity." + s) },
        t("severity." + s) + " " + o.open_by_severity[s]))
      : [el("span", { class: "count zero" }, "0")]));
    const share = o.figures_today.share_within_60s;
    const ack = document.getElementById("st-ack60");
    ack.textContent = share === null ? "–" : (share * 100).toFixed(1) + "%";
    ack.parentElement.classList.toggle("bad", share !== null && share < 0.975);
  }

  // ---- detail -------------------------------------------------------------
  function select(id) {
    selectedId = id;
    renderQueue();
    const row = document.querySelector('.row[data-id="' + id + '"]');
    if (row) row.scrollIntoView({ block: "nearest" });
    loadDetail(id);
  }

  async function loadDetail(id) {
    const pane = document.getElementById("detail");
    const { alert: a, history, notifications } = await api("/api/alerts/" + encodeURIComponent(id));
    if (id !== selectedId) return;
    let resident = null, contacts = [], act = null, away = null;
    if (a.resident_id) {
      // Resident ids are unique only within a site: always name both.
      const path = residentPath(a.site_id, a.resident_id);
      [resident, contacts, act, away] = await Promise.all([
        api(path),
        api(path + "/contacts"),
        api(path + "/activity").catch(() => null),
        api(path + "/away").catch(() => null),
      ]);
    }
    if (id !== selectedId) return;
    pane.replaceChildren(renderDetail(a, history, resident, contacts, act, away, notifications || []));
  }

  function residentPath(siteId, residentId) {
    return "/api/sites/" + encodeURIComponent(siteId) + "/residents/" + encodeURIComponent(residentId);
  }

  function mapLink(r) {
    if (r.latitude == null || r.longitude == null) return null;
    const url = "https://www.openstreetmap.org/?mlat=" + r.latitude + "&mlon=" + r.longitude + "#map=18/" + r.latitude + "/" + r.longitude;
    return el("a", { href: url, target: "_blank", rel: "noopener" }, t("detail.map"));
  }

  // A declared absence ("with her daughter until Sunday 18:00"), set or withdrawn here
  // when the family tells the centre on the phone; "until" is the site's wall time.
  function awayRow(a, r, away) {
    const until = away ? away.until.slice(5, 10).replace("-", "/") + " " + away.until.slice(11, 16) : null;
    return el("dd", { id: "away" },
      away ? t("away.current", { name: r.name, until }) + t("away.by", { who: away.declared_by }) +
        (away.note ? " · " + away.note : "") : t("away.none"),
      el("span", { class: "away-actions" },
        el("button", { id: "btn-away", onclick: () => declareAway(a, r) }, t("away.set")),
        away ? el("button", { id: "btn-away-withdraw", onclick: () => withdrawAway(a, r) }, t("away.withdraw")) : null));
  }

  function declareAway(a, r) {
    const now = Date.now() / 1000;
    EC.setZone(r.timezone);
    const until = el("input", { id: "away-until", type: "datetime-local", required: true,
      min: EC.localIso(now), max: EC.localIso(now + 31 * 86400) });
    EC.setZone(null);
    const note = el("input", { id: "away-note", maxlength: 200 });
    dialog(t("away.title"), el("div", {},
      el("label", {}, t("away.until") + " (" + r.timezone + ")", until), el("label", {}, t("away.note"), note)),
      async () => {
        try {
          await api(residentPath(r.site_id, r.id) + "/away",
            { method: "PUT", json: { until: until.value.slice(0, 16), note: note.value.trim() } });
        } catch (e) { window.alert(t("error.generic", { msg: e.message })); }
        loadDetail(a.id);
      });
  }

  async function withdrawAway(a, r) {
    try {
      await api(residentPath(r.site_id, r.id) + "/away", { method: "DELETE" });
    } catch (e) { window.alert(t("error.generic", { msg: e.message })); }
    loadDetail(a.id);
  }

  function renderDetail(a, history, r, contacts, act, away, notifications) {
    const now = Date.now() / 1000;
    const head = el("div", { class: "detail-head sev-" + a.severity },
      el("span", { class: "sev-label" }, t("severity." + a.severity)),
      EC.hazardMark(a.kind),
      el("h2", {}, t("kind." + a.kind)),
      lateBadge(a),
      againBadge(a),
      el("span", { class: "handling h-" + a.handling }, t("handling." + a.handling)),
      a.handling === "open"
        ? el("span", { class: "timer big " + timerClass(a, now), "data-raised": a.raised_at }, duration(now - a.raised_at))
        : null,
      el("span", { class: "when" }, dateTime(a.raised_at)));
    const actions = el("div", { class: "actions" },
      el("button", { class: "primary", id: "btn-ack", disabled: a.handling !== "open", onclick: () => acknowledge(a.id) }, t("action.ack")),
      el("button", { id: "btn-assign", disabled: a.handling === "resolved", onclick: () => assign(a.id) }, t("action.assign")),
      el("button", { id: "btn-note", onclick: () => note(a.id) }, t("action.note")),
      el("button", { class: "resolve", id: "btn-resolve", disabled: a.handling === "resolved", onclick: () => resolve(a.id) }, t("action.resolve")),
      a.assigned_to ? el("span", { class: "assigned" }, "→ " + a.assigned_to) : null);

    const card = r ? el("section", { class: "card resident-card" },
      el("h3", {}, r.name,
        r.birth_year ? el("span", { class: "age" }, t("detail.age", { n: new Date().getFullYear() - r.birth_year })) : null),
      el("dl", {},
        el("dt", {}, t("detail.conditions")),
        el("dd", {}, r.flags.length ? r.flags.map((f) => el("span", { class: "flag" }, t("flag." + f) === "flag." + f ? f : t("flag." + f))) : "–"),
        el("dt", {}, t("detail.room")),
        el("dd", {}, [r.room_name, r.bed_name].filter(Boolean).join(" / ") || "–"),
        el("dt", {}, t("detail.address")),
        el("dd", {}, (r.address || r.site_name) + " ", mapLink(r)),
        r.site_kind === "home" ? el("dt", {}, t("detail.away")) : null,
        r.site_kind === "home" ? awayRow(a, r, away) : null)) :
      el("section", { class: "card resident-card" }, el("h3", {}, a.site_name || a.site_id), el("p", {}, a.site_address || ""));

    const contactList = el("section", { class: "card" }, el("h3", {}, t("detail.contacts")),
      !contacts.length && !(r && r.phone) ? el("p", { class: "muted" }, "–") : null,
      el("ol", { class: "contacts" },
        r && r.phone ? el("li", {}, el("span", { class: "cname" }, r.name + " (" + t("detail.resident_phone") + ")"),
          el("a", { class: "tel", href: "tel:" + r.phone }, r.phone)) : null,
        contacts.map((c) => el("li", {},
          el("span", { class: "cname" }, c.name + " (" + t("contact_role." + c.role) + ")"),
          c.phone ? el("a", { class: "tel", href: "tel:" + c.phone }, c.phone) : "–"))));

    const evidence = el("section", { class: "card" }, el("h3", {}, t("detail.evidence")),
      a.evidence.length ? el("ul", { class: "evidence" }, a.evidence.map((e) =>
        el("li", {}, el("span", { class: "time" }, hhmmss(e.ts)), " ",
          evidenceSource(e), EC.lang === "zh-CN" ? "：" : ": ", evidenceText(e)))) : el("p", { class: "muted" }, "–"));

    const strip = el("section", { class: "card" }, el("h3", {}, t("detail.activity")), renderStrip(act));

    const hist = el("section", { class: "card" }, el("h3", {}, t("detail.history")),
      el("ol", { class: "history" }, history.map((h) => el("li", {},
        el("span", { class: "time" }, dateTime(h.at)), " ",
        el("strong", {}, t("history." + h.event) === "history." + h.event ? h.event : t("history." + h.event)),
        h.actor ? " · " + (h.actor === "centre" ? t("history.centre") : h.actor) : "",
        h.details && h.details.outcome ? " · " + t("outcome." + h.details.outcome) : "",
        h.text ? " — " + h.text : ""))));

    // Each message: to whom, by which channel, what became of it (answered, digest, ...).
    const sent = el("section", { class: "card notifications" }, el("h3", {}, t("detail.notifications")),
      notifications.length ? el("ol", { class: "history" }, notifications.map((n) => el("li", { class: "nout-" + n.outcome },
        el("span", { class: "time" }, dateTime(n.at)), " ",
        n.recipient === "centre" ? t("history.centre") : n.recipient,
        " · " + t("channel." + (n.channel || "unknown")),
        n.purpose === "followup" ? " · " + t("notify.purpose.followup") : "",
        " · ", el("strong", {}, t("notify.outcome." + n.outcome)))))
        : el("p", { class: "muted" }, "–"));

    return el("div", { class: "detail-inner", "data-alert": a.id }, head, EC.hazardAdvice(a.kind), actions,
      el("div", { class: "cards" }, card, contactList, evidence,
        typeof ECField !== "undefined" ? ECField.panel(a) : null, strip, hist, sent));
  }

  function renderStrip(act) {
    if (!act || !act.strip.rooms.length) return el("p", { class: "muted" }, t("detail.no_activity"));
    const { since, until, bucket_seconds: step } = act.strip;
    const max = Math.max(1, ...act.strip.rooms.flatMap((r) => r.buckets));
    const hours = [];
    for (let ts = Math.ceil(since / 3600) * 3600; ts < until; ts += 3 * 3600) hours.push(ts);
    return el("div", { class: "strip" },
      act.strip.rooms.map((room) => el("div", { class: "strip-row" },
        el("span", { class: "strip-label" }, room.room_name),
        el("div", { class: "strip-cells" }, room.buckets.map((n, i) => el("span", {
          class: "cell", style: "opacity:" + (n ? 0.25 + 0.75 * n / max : 0.06),
          title: hhmm(since + i * step) + " · " + n }))))),
      el("div", { class: "strip-row axis" }, el("span", { class: "strip-label" }),
        el("div", { class: "strip-axis" }, hours.map((ts) => el("span", {
          style: "left:" + (100 * (ts - since) / (until - since)) + "%" }, hhmm(ts))))));
  }

  // ---- actions ------------------------------------------------------------
  async function act(id, path, body) {
    try {
      const a = await api("/api/alerts/" + encodeURIComponent(id) + "/" + path, { method: "POST", json: body || {} });
      applyChange({ seq: lastSeq, event: path, alert: a });
      loadDetail(id);
    } catch (e) {
      window.alert(t("error.generic", { msg: e.message }));
    }
  }

  function acknowledge(id) { flashing.delete(id); return act(id, "acknowledge"); }

  function dialog(title, body, onOk) {
    const dlg = document.getElementById("dlg");
    document.getElementById("dlg-title").textContent = title;
    document.getElementById("dlg-body").replaceChildren(body);
    dlg.onclose = () => { if (dlg.returnValue === "ok") onOk(); };
    dlg.returnValue = "";
    dlg.showModal();
    const first = body.querySelector("input,select,textarea");
    if (first) first.focus();
  }

  function assign(id) {
    const input = el("input", { id: "assignee", required: true, maxlength: 128 });
    dialog(t("action.assign"), el("label", {}, t("action.assignee"), input),
      () => act(id, "assign", { assignee: input.value }));
  }

  function note(id) {
    const input = el("textarea", { id: "note-text", required: true, rows: 3, maxlength: 4000 });
    dialog(t("action.note"), el("label", {}, t("action.note_text"), input),
      () => act(id, "notes", { text: input.value }));
  }

  function resolve(id) {
    const outcomes = ["resident_fine", "false_alarm", "assisted_on_site", "family_attended", "ambulance_called", "device_fault", "other"];
    const select = el("select", { id: "outcome", required: true },
      el("option", { value: "" }, "—"),
      outcomes.map((o) => el("option", { value: o }, t("outcome." + o))));
    const text = el("textarea", { id: "resolve-note", rows: 2, maxlength: 4000 });
    dialog(t("action.resolve"), el("div", {},
      el("label", {}, t("action.outcome"), select), el("label", {}, t("action.note_text"), text)),
      () => act(id, "resolve", { outcome: select.value, note: text.value || null }));
  }

  // ---- keyboard -----------------------------------------------------------
  document.addEventListener("keydown", (ev) => {
    if (ev.target.closest("input,textarea,select,dialog") || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const list = sorted();
    const i = list.findIndex((a) => a.id === selectedId);
    const key = ev.key.toLowerCase();
    if (key === "j" && list.length) select(list[Math.min(list.length - 1, i + 1)].id);
    else if (key === "k" && list.length) select(list[Math.max(0, i - 1)].id);
    else if (key === "a" && selectedId && alerts.get(selectedId)?.handling === "open") acknowledge(selectedId);
    else if (key === "r" && selectedId) resolve(selectedId);
    else return;
    ev.preventDefault();
  });

  // ---- platform health -----------------------------------------------------
  // /healthz answers 503 with the parts that may delay alerts (InfluxDB hung, broker
  // away, a stuck loop...): the operator must know the screen may be behind.
  const HEALTH_POLL_MS = 5000;
  let healthProblems = [];

  function problemText(p) {
    if (p.part.startsWith("loop:")) return t("health.part.loop", { name: p.part.slice(5) });
    const key = "health.part." + p.part;
    const text = t(key);
    return text === key ? t("health.part.other", { name: p.part }) : text;
  }

  function renderHealth() {
    const banner = document.getElementById("health-banner");
    banner.hidden = healthProblems.length === 0;
    if (!healthProblems.length) return;
    const since = Math.min(...healthProblems.map((p) => p.since ?? Date.now() / 1000));
    const reasons = healthProblems.map(problemText).join(EC.lang === "zh-CN" ? "；" : "; ");
    banner.textContent = t("health.delayed", { reasons, since: hhmm(since) });
    banner.title = healthProblems.map((p) => p.part + ": " + p.reason).join("\n");
  }

  async function pollHealth() {
    try {
      const resp = await fetch("/healthz", { credentials: "same-origin", cache: "no-store" });
      const body = await resp.json();
      healthProblems = resp.status === 200 ? [] : (body.problems || []);
    } catch (e) {
      return;  // the gateway itself unreachable: the live-stream banner says so
    }
    renderHealth();
  }

  // ---- start --------------------------------------------------------------
  async function start() {
    await EC.loadStrings();
    me = await api("/api/auth/me");
    if (me.role === "family") { location.href = "/family"; return; }
    document.getElementById("operator").textContent = me.display_name;
    const langBtn = document.getElementById("lang");
    langBtn.textContent = t("lang.switch");
    langBtn.addEventListener("click", EC.toggleLang);
    document.getElementById("logout").addEventListener("click", EC.signOut);
    document.getElementById("mute").addEventListener("click", () => {
      ensureAudio();
      if (audio && audio.state === "running" && mutedUntil <= Date.now() / 1000 && document.getElementById("mute").className === "") {
        mutedUntil = Date.now() / 1000 + MUTE_SECONDS;  // a few minutes only, never for good
      }
      renderMute();
    });
    document.addEventListener("click", ensureAudio, { once: true });
    document.addEventListener("keydown", ensureAudio, { once: true });
    document.addEventListener("langchange", () => {
      langBtn.textContent = t("lang.switch");
      setConn(connState);
      renderHealth();
      renderQueue();
      loadOverview();
      if (selectedId) loadDetail(selectedId);
    });
    setConn("connecting");
    renderMute();
    connect();
    setInterval(tick, 1000);
    setInterval(loadOverview, 30000);
    pollHealth();
    setInterval(pollHealth, HEALTH_POLL_MS);
  }

  start();
})();
