// The family portal: one sentence, today's timeline, alerts in plain words, preferences.
"use strict";
(() => {
  const { t, api, el, hhmm, dateTime } = EC;
  const CHANNELS = ["sms", "voice", "wechat_work", "email", "push"];
  let residents = [];
  let current = null;
  let view = null;
  let prefs = null;

  function ago(ts) {
    const min = Math.floor((Date.now() / 1000 - ts) / 60);
    if (min < 2) return t("family.ago.now");
    if (min < 120) return t("family.ago.min", { n: min });
    return t("family.ago.hour", { n: Math.floor(min / 60) });
  }

  // Room names in the registry are usually Chinese; English readers get the room's kind.
  function roomLabel(name, kind) {
    if (EC.lang === "en" && kind) return t("room_kind." + kind);
    return name || (kind ? t("room_kind." + kind) : "");
  }

  function name() { return (prefs && prefs.nickname) || (view && view.resident.name) || ""; }

  function sentence(state) {
    if (!state || state.state === "unknown") return [t("family.state.unknown", { name: name() }), "unknown"];
    if (state.state === "in_bed") return [t("family.state.in_bed", { name: name(), time: hhmm(state.since) }), "in_bed"];
    if (state.state === "out") return [t("family.state.out", { name: name(), time: hhmm(state.since) }), "out"];
    const room = roomLabel(state.last_active_room_name, state.last_active_room_kind);
    const key = room ? "family.state.at_home" : "family.state.at_home_noroom";
    return [t(key, { name: name(), ago: ago(state.last_active_at), room: room || "" }), "at_home"];
  }

  function alertSentence(item) {
    const a = item.alert;
    const ack = item.history.find((h) => h.event === "acknowledged");
    const res = item.history.find((h) => h.event === "resolved");
    const who = (res && res.actor) || (ack && ack.actor) || a.resolved_by || a.acknowledged_by || "";
    const vars = { time: dateTime(a.raised_at), kind: t("kind." + a.kind), who,
      outcome: a.outcome ? t("outcome." + a.outcome) : "" };
    return t("family.alert." + a.handling, vars) + (a.resolution_note ? " (" + a.resolution_note + ")" : "");
  }

  // "Who was told: 李梅 · Voice call · not answered; Li Wei · Voice call · answered".
  function notifiedLine(item) {
    const notes = item.notifications || [];
    if (!notes.length) return null;
    return el("div", { class: "notified muted" }, t("family.notified") + (EC.lang === "zh-CN" ? "：" : ": "),
      notes.map((n, i) => el("span", { class: "nout-" + n.outcome },
        (i ? (EC.lang === "zh-CN" ? "；" : "; ") : "") + n.recipient + " · " + t("channel." + (n.channel || "unknown")) +
        " · " + t("notify.outcome." + n.outcome))));
  }

  function render() {
    if (!view) return;
    const [text, cls] = sentence(view.state);
    const st = document.getElementById("state");
    st.textContent = text;
    st.className = "state-sentence st-" + cls;
    document.getElementById("where").textContent = [view.resident.site_name, view.resident.address].filter(Boolean).join(" · ");
    const tl = document.getElementById("timeline");
    tl.replaceChildren(...(view.today.length ? view.today.map((i) => el("li", { class: "tl-" + i.kind },
      el("span", { class: "t" }, hhmm(i.at)),
      el("span", {}, t("family.timeline." + i.kind),
        (i.room_name || i.room_kind) && i.kind !== "kitchen" ? " · " + roomLabel(i.room_name, i.room_kind) : "",
        i.until && i.until - i.at >= 60 ? el("span", { class: "until" }, " " + t("family.timeline.until", { time: hhmm(i.until) })) : "")))
      : [el("li", { class: "muted" }, t("family.today_empty"))]));
    document.getElementById("alerts").replaceChildren(...(view.alerts.length ? view.alerts.map((item) =>
      el("div", { class: "alert-item sev-" + item.alert.severity + (item.alert.handling === "resolved" ? " done" : " pending"), "data-alert": item.alert.id },
        el("div", { class: "status" }, t("handling." + item.alert.handling)),
        el("div", {}, EC.hazardMark(item.alert.kind), alertSentence(item)),
        item.alert.handling === "resolved" ? null : EC.hazardAdvice(item.alert.kind),
        notifiedLine(item)))
      : [el("p", { class: "muted" }, t("family.alerts_none"))]));
  }

  // A declared absence: "until" is the site's local wall time, shown as written.
  function untilText(until) { return until.slice(5, 10).replace("-", "/") + " " + until.slice(11, 16); }

  function renderAway() {
    if (!view) return;
    // Home-care beds only: in an institution the outing rule does not run.
    document.getElementById("away-card").hidden = view.resident.site_kind !== "home";
    const away = view.away;
    const cur = document.getElementById("away-current");
    const form = document.getElementById("away-form");
    document.getElementById("away-explain").textContent = t("away.explain", { name: name() });
    const line = document.getElementById("state-away");  // also under the state sentence
    line.hidden = !away;
    line.textContent = away ? t("away.current", { name: name(), until: untilText(away.until) }) : "";
    cur.hidden = !away;
    document.getElementById("away-withdraw").hidden = !away;
    form.hidden = !!away;
    if (away) {
      cur.textContent = t("away.current", { name: name(), until: untilText(away.until) }) +
        t("away.by", { who: away.declared_by }) + (away.note ? " · " + away.note : "");
    } else {
      const now = Date.now() / 1000;
      const input = document.getElementById("away-until");
      input.min = EC.localIso(now);
      input.max = EC.localIso(now + 31 * 86400);
    }
  }

  // `current` is "site_id/resident_id": resident ids are unique only within a site.
  function residentPath(ref) {
    const [siteId, residentId] = ref.split("/");
    return "/sites/" + encodeURIComponent(siteId) + "/residents/" + encodeURIComponent(residentId);
  }

  async function declareAway(ev) {
    ev.preventDefault();
    const err = document.getElementById("away-error");
    err.hidden = true;
    const until = document.getElementById("away-until").value;
    if (!until) { err.textContent = t("away.need_until"); err.hidden = false; return; }
    try {
      await api("/api" + residentPath(current) + "/away", { method: "PUT",
        json: { until: until.slice(0, 16), note: document.getElementById("away-note").value.trim() } });
    } catch (e) { err.textContent = t("error.generic", { msg: e.message }); err.hidden = false; return; }
    document.getElementById("away-note").value = "";
    await loadView();
  }

  async function withdrawAway() {
    try {
      await api("/api" + residentPath(current) + "/away", { method: "DELETE" });
    } catch (e) { window.alert(t("error.generic", { msg: e.message })); return; }
    await loadView();
  }

  function renderPrefs() {
    // Channels the registry holds no address for are marked, so she knows what reaches her.
    const linked = (prefs.linked_contacts || []).length > 0;
    const have = new Set(prefs.available_channels || []);
    const label = (c) => t("channel." + c) + (linked && !have.has(c) ? t("family.prefs.not_set_up") : "");
    const box = (id, list, name) => document.getElementById(id).replaceChildren(...CHANNELS.map((c) =>
      el("label", { class: "chk" }, el("input", { type: "checkbox", name, value: c, checked: list.includes(c) }), label(c))));
    const note = document.getElementById("prefs-note");
    note.textContent = linked ? t("family.prefs.fallback") : t("family.prefs.unlinked");
    box("safety", prefs.safety_channels, "safety");
    box("other", prefs.other_channels, "other");
    document.getElementById("summary-on").checked = prefs.daily_summary;
    document.getElementById("summary-time").value = prefs.daily_summary_time;
    document.getElementById("nickname").value = prefs.nickname;
  }

  async function loadView() {
    view = await api("/api/family" + residentPath(current));
    EC.setZone(view.resident.timezone);
    render();
    renderAway();
  }

  async function savePrefs(ev) {
    ev.preventDefault();
    const checked = (name) => [...document.querySelectorAll('input[name="' + name + '"]:checked')].map((i) => i.value);
    const err = document.getElementById("prefs-error");
    err.hidden = true;
    const body = {
      safety_channels: checked("safety"), other_channels: checked("other"),
      daily_summary: document.getElementById("summary-on").checked,
      daily_summary_time: document.getElementById("summary-time").value || "20:00",
      nickname: document.getElementById("nickname").value.trim(), language: EC.lang,
    };
    if (!body.safety_channels.length) { err.textContent = t("family.prefs.need_one"); err.hidden = false; return; }
    try {
      prefs = await api("/api/family/preferences", { method: "PUT", json: body });
    } catch (e) { err.textContent = t("error.generic", { msg: e.message }); err.hidden = false; return; }
    const saved = document.getElementById("saved");
    saved.textContent = t("family.prefs.saved");
    saved.hidden = false;
    setTimeout(() => { saved.hidden = true; }, 3000);
    render();
  }

  async function start() {
    await EC.loadStrings();
    const langBtn = document.getElementById("lang");
    langBtn.textContent = t("lang.switch");
    langBtn.addEventListener("click", EC.toggleLang);
    document.addEventListener("langchange", () => { langBtn.textContent = t("lang.switch"); render(); renderAway(); renderPrefs(); });
    document.getElementById("logout").addEventListener("click", EC.signOut);
    document.getElementById("prefs").addEventListener("submit", savePrefs);
    document.getElementById("away-form").addEventListener("submit", declareAway);
    document.getElementById("away-withdraw").addEventListener("click", withdrawAway);
    const me = await api("/api/auth/me");
    if (me.role !== "family" && me.role !== "admin") { location.href = "/console"; return; }
    [residents, prefs] = await Promise.all([api("/api/family/residents"), api("/api/family/preferences")]);
    renderPrefs();
    if (!residents.length) return;
    const picker = document.getElementById("resident");
    picker.replaceChildren(...residents.map((r) => el("option", { value: r.site_id + "/" + r.id }, r.name)));
    document.getElementById("picker").hidden = residents.length < 2;
    picker.addEventListener("change", () => { current = picker.value; loadView(); });
    current = residents[0].site_id + "/" + residents[0].id;
    await loadView();
    // Alerts and the state change while she looks: follow the live stream, refresh on news.
    const source = new EventSource("/api/stream");
    source.addEventListener("alert", () => loadView());
    setInterval(loadView, 60000);
  }
  start();
})();
