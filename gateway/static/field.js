// The responder's phone page: my orders (live), one tap per step, the resident card,
// the outcome form. Small and plain for slow networks: one request per tap, retried by hand.
"use strict";
(() => {
  const { t, api, el, hhmm, dateTime } = EC;
  const EVENTS = ["dispatched", "accept", "decline", "on_the_way", "arrive", "done",
    "redispatch", "cancel", "accept_overdue", "late"];
  const OPEN = new Set(["dispatched", "accepted", "on_the_way", "arrived"]);
  const OUTCOMES = ["assisted_on_site", "resident_fine", "family_attended", "ambulance_called",
    "false_alarm", "device_fault", "other"];
  const orders = new Map();
  const fresh = new Set();
  let me = null;
  let openId = null;
  let card = null;
  let source = null;

  function term(prefix, key) { const s = t(prefix + key); return s === prefix + key ? key : s; }

  function evidenceText(e) {
    if (!e.phrases || !e.phrases.length) return e.summary;
    return e.phrases.map((p) => {
      const v = Object.assign({}, p.values);
      if (v.measure) v.measure = t("vital." + v.measure);
      if (v.unit) v.unit = t("unit." + v.unit);
      return t("evidence." + p.key, v);
    }).join(EC.lang === "zh-CN" ? "；" : "; ");
  }

  function what(o) {
    if (o.alert_kind) return t("kind." + o.alert_kind);
    return o.request_kind ? t("request.kind." + o.request_kind) : t("field.request");
  }

  function flags(o) {
    return [o.accept_overdue && o.state === "dispatched" ? t("field.accept_overdue") : null,
      o.late && !o.arrived_at ? t("field.late") : null].filter(Boolean).join(" · ");
  }

  function item(o) {
    const f = flags(o);
    return el("button", { type: "button", class: "order-item st-" + o.state + (fresh.has(o.id) ? " new" : ""),
      "data-order": o.id, onclick: () => openOrder(o.id) },
      el("span", { class: "state" }, t("field.state." + o.state)),
      el("div", { class: "who" }, (o.resident_name || o.site_name || o.site_id) + " · " + what(o)),
      el("div", { class: "meta" }, o.address || ""),
      el("div", { class: "meta" }, t("field.dispatched_at", { time: hhmm(o.dispatched_at) }),
        OPEN.has(o.state) && !o.arrived_at ? " · " + t("field.arrive_by", { time: hhmm(o.arrive_due) }) : ""),
      f ? el("div", { class: "flagged" }, f) : null);
  }

  function renderList() {
    const all = [...orders.values()].sort((a, b) => b.dispatched_at - a.dispatched_at);
    const open = all.filter((o) => OPEN.has(o.state));
    const closed = all.filter((o) => !OPEN.has(o.state)).slice(0, 20);
    document.getElementById("open-orders").replaceChildren(...(open.length ? open.map(item)
      : [el("p", { class: "muted", id: "no-orders" }, t("field.none"))]));
    document.getElementById("closed-orders").replaceChildren(...closed.map(item));
  }

  const gate = EC.streamGate((ev) => onChange(ev));  // the list's reloads

  function onChange(ev) {
    const o = JSON.parse(ev.data);
    const isNew = !orders.has(o.id) || ev.type === "redispatch";
    orders.set(o.id, o);
    if (isNew && o.state === "dispatched") {
      fresh.add(o.id);
      if (navigator.vibrate) navigator.vibrate([200, 100, 200]);
    }
    if (openId === o.id) openOrder(o.id); else if (!openId) renderList();
  }

  async function loadOrders() {
    await gate.reload(async () => {
      const list = await api("/api/field/orders?limit=100");
      orders.clear();
      for (const o of list) orders.set(o.id, o);
    });
    renderList();
  }

  function showList() {
    openId = null;
    card = null;
    document.getElementById("order-view").hidden = true;
    document.getElementById("list-view").hidden = false;
    renderList();
  }

  async function openOrder(id) {
    openId = id;
    fresh.delete(id);
    card = await api("/api/field/orders/" + encodeURIComponent(id));
    if (openId !== id) return;
    renderCard();
    document.getElementById("list-view").hidden = true;
    document.getElementById("order-view").hidden = false;
    window.scrollTo(0, 0);
  }

  // One tap, one request; on a slow or broken network the button says so and can be tapped again.
  async function step(name, body, button) {
    const status = document.getElementById("step-status");
    const buttons = document.querySelectorAll("#order-view button");
    buttons.forEach((b) => { b.disabled = true; });
    status.textContent = t("field.sending");
    status.className = "muted";
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(), 20000);
    try {
      const o = await api("/api/field/orders/" + encodeURIComponent(card.order.id) + "/" + name,
        { method: "POST", json: body || {}, signal: ctrl.signal });
      orders.set(o.id, o);
      await openOrder(o.id);
    } catch (e) {
      status.textContent = e.name === "AbortError" ? t("field.retry") : t("error.generic", { msg: e.message });
      status.className = "error";
      buttons.forEach((b) => { b.disabled = false; });
      if (button) button.focus();
    } finally {
      clearTimeout(timer);
    }
  }

  function stepButtons(o) {
    if (o.state === "dispatched") {
      const form = el("form", { class: "decline", id: "decline-form", hidden: true },
        el("label", {}, t("field.decline_reason"), el("input", { id: "decline-reason", maxlength: 200 })),
        el("button", { type: "submit", class: "decline" }, t("field.decline")));
      form.addEventListener("submit", (ev) => {
        ev.preventDefault();
        const reason = document.getElementById("decline-reason").value.trim();
        if (!reason) { document.getElementById("step-status").textContent = t("field.need_reason"); return; }
        step("decline", { reason });
      });
      return [el("div", { class: "steps" },
        el("button", { type: "button", class: "primary", id: "btn-accept", onclick: (ev) => step("accept", {}, ev.target) }, t("field.accept")),
        el("button", { type: "button", class: "decline", id: "btn-decline", onclick: () => { form.hidden = false; document.getElementById("decline-reason").focus(); } }, t("field.decline"))),
      form];
    }
    if (o.state === "accepted") {
      return [el("div", { class: "steps" },
        el("button", { type: "button", class: "primary", id: "btn-on-the-way", onclick: (ev) => step("on_the_way", {}, ev.target) }, t("field.on_the_way")),
        el("button", { type: "button", id: "btn-arrive", onclick: (ev) => step("arrive", {}, ev.target) }, t("field.arrive")))];
    }
    if (o.state === "on_the_way") {
      return [el("div", { class: "steps" },
        el("button", { type: "button", class: "primary", id: "btn-arrive", onclick: (ev) => step("arrive", {}, ev.target) }, t("field.arrive")))];
    }
    if (o.state === "arrived") {
      const form = el("form", { class: "outcome", id: "outcome-form" },
        el("label", {}, t("field.outcome"), el("select", { id: "outcome", required: true },
          OUTCOMES.map((k) => el("option", { value: k }, t("outcome." + k))))),
        el("label", {}, t("field.note"), el("textarea", { id: "outcome-note", rows: 3, maxlength: 2000 })),
        el("div", { class: "steps" }, el("button", { type: "submit", class: "primary", id: "btn-done" }, t("field.done"))));
      form.addEventListener("submit", (ev) => {
        ev.preventDefault();
        step("done", { outcome: document.getElementById("outcome").value,
          note: document.getElementById("outcome-note").value.trim() || null });
      });
      return [form];
    }
    return [el("p", { class: "muted" }, o.outcome ? t("outcome." + o.outcome) + (o.note ? " — " + o.note : "") : "")];
  }

  function mapLink(r) {
    // geo: opens the phone's own map app; the address goes along for apps that search by it.
    if (r.latitude == null || r.longitude == null) return null;
    const href = "geo:" + r.latitude + "," + r.longitude + "?q=" + r.latitude + "," + r.longitude +
      "(" + encodeURIComponent(r.address || r.name) + ")";
    return el("a", { class: "map", id: "map-link", href }, t("detail.map"));
  }

  function renderCard() {
    const o = card.order;
    const r = card.resident;
    const f = flags(o);
    const head = el("section", { class: "fcard" },
      el("button", { type: "button", id: "back", onclick: showList }, "← " + t("field.back")),
      el("h2", {}, what(o) + " · " + t("field.state." + o.state)),
      el("p", { class: "state-sentence" }, r ? r.name : (o.site_name || o.site_id)),
      o.request_note ? el("p", {}, o.request_note) : null,
      el("p", { class: "muted" }, t("field.dispatched_at", { time: hhmm(o.dispatched_at) }),
        OPEN.has(o.state) && !o.arrived_at ? " · " + t("field.arrive_by", { time: hhmm(o.arrive_due) }) : ""),
      f ? el("p", { class: "flagged" }, f) : null,
      ...stepButtons(o),
      el("p", { id: "step-status", class: "muted", "aria-live": "polite" }));
    const phones = [];
    if (r && r.phone) phones.push(el("a", { class: "tel", href: "tel:" + r.phone }, r.name + " " + r.phone));
    for (const c of card.contacts) {
      if (c.phone) phones.push(el("a", { class: "tel", href: "tel:" + c.phone }, c.name + "（" + term("contact_role.", c.role) + "）" + c.phone));
    }
    const resident = el("section", { class: "fcard resident-card" }, el("h2", {}, t("field.resident")),
      el("dl", { class: "rcard" },
        el("dt", {}, t("detail.address")),
        el("dd", {}, (r ? r.address : o.address) || o.site_name || "", r ? mapLink(r) : null),
        r && r.birth_year ? el("dt", {}, t("field.age")) : null,
        r && r.birth_year ? el("dd", {}, t("detail.age", { n: new Date().getFullYear() - r.birth_year })) : null,
        r ? el("dt", {}, t("detail.conditions")) : null,
        r ? el("dd", {}, r.flags.length ? r.flags.map((x) => el("span", { class: "flag" }, term("flag.", x))) : "–") : null,
        r && (r.room_name || r.bed_name) ? el("dt", {}, t("detail.room")) : null,
        r && (r.room_name || r.bed_name) ? el("dd", {}, [r.room_name, r.bed_name].filter(Boolean).join(" / ")) : null),
      el("div", { class: "phones" }, phones));
    const a = card.alert;
    const why = a ? el("section", { class: "fcard" }, el("h2", {}, t("field.why")),
      el("p", {}, el("strong", {}, t("kind." + a.kind)), " · " + dateTime(a.raised_at)),
      el("ul", { class: "evidence" }, a.evidence.map((e) => el("li", {}, hhmm(e.ts) + " " +
        [e.room_name, e.device_kind ? t("device_kind." + e.device_kind) : null].filter(Boolean).join(" · ") +
        (EC.lang === "zh-CN" ? "：" : ": ") + evidenceText(e))))) : null;
    const hist = el("section", { class: "fcard" }, el("h2", {}, t("field.history")),
      el("ol", { class: "history" }, card.history.map((h) => el("li", {},
        dateTime(h.at) + " " + term("field.event.", h.event) + (h.actor ? " · " + h.actor : "") +
        (h.details && h.details.outcome ? " · " + t("outcome." + h.details.outcome) : "") +
        (h.details && h.details.reason ? " · " + h.details.reason : "")))));
    const tests = el("section", { class: "fcard", id: "device-tests" }, el("h2", {}, t("devtest.title")));
    document.getElementById("order-view").replaceChildren(head, resident, why || "", tests, hist);
    loadDeviceTests(o.site_id, tests).catch(() => { tests.hidden = true; });
  }

  // Weekly tests of the home's emergency buttons and fall devices, done while there.
  async function loadDeviceTests(siteId, box) {
    const rows = (await api("/api/field/device-tests")).filter((r) => r.site_id === siteId);
    box.hidden = !rows.length;
    box.replaceChildren(el("h2", {}, t("devtest.title")), ...rows.map((r) => {
      const state = r.fault_since ? t("devtest.fault", { since: dateTime(r.fault_since) })
        : r.overdue ? t("devtest.overdue") : t("devtest.ok");
      const mark = (passed) => async () => {
        await api("/api/field/device-tests", { method: "POST", json: { site_id: siteId, device_id: r.device_id, passed } });
        await loadDeviceTests(siteId, box);
      };
      return el("div", { class: "device-test", "data-device": r.device_id },
        el("div", { class: "who" }, t("device_kind." + r.kind) + " " + r.device_id),
        el("div", { class: "meta" }, (r.last_test_at ? dateTime(r.last_test_at) : t("devtest.never")) + " · " + state),
        el("div", { class: "steps" },
          el("button", { type: "button", class: "test-pass", onclick: mark(true) }, t("devtest.pass")),
          el("button", { type: "button", class: "test-fail decline", onclick: mark(false) }, t("devtest.fail"))));
    }));
  }

  // ---- visits (探访): owed now, overdue first; one form per resident -------------------
  let owed = [];
  const MODES = ["in_person", "phone", "video"];
  const VISIT_OUTCOMES = ["resident_fine", "needs_follow_up", "not_reached"];

  function visitForm(o) {
    const sel = (cls, prefix, values) => el("select", { class: cls }, values.map((v) => el("option", { value: v }, t(prefix + v))));
    const form = el("form", { class: "outcome visit-form", hidden: true },
      el("label", {}, t("visit.mode"), sel("visit-mode", "visit.mode.", MODES)),
      el("label", {}, t("visit.outcome"), sel("visit-outcome", "visit.outcome.", VISIT_OUTCOMES)),
      el("label", {}, t("field.note"), el("textarea", { class: "visit-note", rows: 2, maxlength: 2000 })),
      el("div", { class: "steps" }, el("button", { type: "submit", class: "primary visit-save" }, t("visit.save"))),
      el("p", { class: "muted visit-status", "aria-live": "polite" }));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const status = form.querySelector(".visit-status");
      const button = form.querySelector("button");
      button.disabled = true;
      status.textContent = t("field.sending");
      try {
        await api("/api/field/visits", { method: "POST", json: { site_id: o.site_id, resident_id: o.resident_id,
          mode: form.querySelector(".visit-mode").value, outcome: form.querySelector(".visit-outcome").value,
          note: form.querySelector(".visit-note").value.trim() || null } });
        await loadOwed();
      } catch (e) {
        status.textContent = t("error.generic", { msg: e.message });
        button.disabled = false;
      }
    });
    return form;
  }

  function owedItem(o) {
    const form = visitForm(o);
    const cat = EC.lang === "zh-CN" ? o.category_zh : o.category_en;
    return el("div", { class: "order-item visit-item vs-" + o.status, "data-resident": o.resident_id },
      el("span", { class: "state" }, t("visit.status." + o.status)),
      el("div", { class: "who" }, o.resident_name),
      el("div", { class: "meta" }, cat + " · " + t("visit.period." + o.period) + " · " +
        t("visit.due_by", { time: dateTime(o.period_end - 1) })),
      el("div", { class: "meta" }, o.address || "", " · ",
        o.last_visit_at ? t("visit.last", { time: dateTime(o.last_visit_at) }) : t("visit.never")),
      o.status === "visited" ? null : el("button", { type: "button", class: "visit-open",
        onclick: () => { form.hidden = !form.hidden; } }, t("visit.log")),
      form);
  }

  function renderOwed() {
    const open = owed.filter((o) => o.status !== "visited");
    document.getElementById("owed").replaceChildren(...(open.length ? open.map(owedItem)
      : [el("p", { class: "muted" }, t("visit.none"))]));
  }

  async function loadOwed() {
    owed = await api("/api/field/visits/owed");
    renderOwed();
  }

  function renderDuty() {
    const b = document.getElementById("duty");
    if (!me) { b.hidden = true; return; }
    b.textContent = me.on_duty ? t("field.on_duty") : t("field.off_duty");
    b.className = me.on_duty ? "on" : "";
    b.title = me.on_duty ? t("field.go_off_duty") : t("field.go_on_duty");
  }

  async function toggleDuty() {
    me = await api("/api/field/me/duty", { method: "PUT", json: { on_duty: !me.on_duty } });
    renderDuty();
  }

  function setLost(lost) {
    const banner = document.getElementById("conn-banner");
    banner.hidden = !lost;
    banner.textContent = t("stream.lost");
  }

  function connect() {
    if (source) source.close();
    source = new EventSource("/api/field/stream");
    source.addEventListener("hello", async () => { setLost(false); await loadOrders(); });
    for (const name of EVENTS) source.addEventListener(name, gate.take);
    source.addEventListener("signed-out", () => { location.href = "/login?next=/field"; });
    source.onerror = () => {
      setLost(true);
      if (source.readyState === EventSource.CLOSED) setTimeout(connect, 3000);
    };
  }

  async function start() {
    await EC.loadStrings();
    const langBtn = document.getElementById("lang");
    langBtn.textContent = t("lang.switch");
    langBtn.addEventListener("click", EC.toggleLang);
    document.addEventListener("langchange", () => {
      langBtn.textContent = t("lang.switch");
      renderDuty();
      if (card) renderCard(); else renderList();
      renderOwed();
    });
    document.getElementById("logout").addEventListener("click", EC.signOut);
    document.getElementById("duty").addEventListener("click", toggleDuty);
    const account = await api("/api/auth/me");
    if (account.role !== "responder") { location.href = account.role === "family" ? "/family" : "/console"; return; }
    try { me = await api("/api/field/me"); } catch (e) { me = null; }
    renderDuty();
    await loadOrders();
    await loadOwed();
    connect();
    // The link in a new order's SMS: /field#order=<id> opens that order's card, on
    // loading the page or when the link is followed while it is open.
    await openLinked();
    window.addEventListener("hashchange", openLinked);
  }

  async function openLinked() {
    const linked = /^#order=([\w-]+)$/.exec(location.hash);
    if (!linked) return;
    if (!orders.has(linked[1])) await loadOrders();
    if (orders.has(linked[1])) await openOrder(linked[1]);
  }
  start();
})();
