// The work-order board: every open dispatch and service request in my subtree, live;
// requests waiting for dispatch get a responder picker (on-duty ones of the community first).
"use strict";
(() => {
  const { t, api, el, hhmm, dateTime } = EC;
  const EVENTS = ["requested", "dispatched", "accept", "decline", "on_the_way", "arrive", "done",
    "redispatch", "cancel", "accept_overdue", "late"];

  function what(o) {
    if (o.alert_kind) return t("kind." + o.alert_kind);
    return o.request_kind ? t("request.kind." + o.request_kind) : t("field.request");
  }

  async function dispatchCell(o) {
    if (o.state !== "requested" && o.state !== "declined" && !(o.state === "dispatched" && o.accept_overdue)) {
      return el("td", {}, o.responder_name || o.responder || "–");
    }
    const people = await api("/api/field/responders?site_id=" + encodeURIComponent(o.site_id));
    const pick = el("select", { class: "board-who" }, people.filter((r) => r.username !== o.responder).map((r) =>
      el("option", { value: r.username }, r.name + (r.on_duty ? t("field.panel.on_duty_mark") : ""))));
    const go = el("button", { type: "button", class: "board-dispatch", disabled: !people.length, onclick: async () => {
      go.disabled = true;
      try {
        await api("/api/field/orders/" + encodeURIComponent(o.id) + "/redispatch", { method: "POST", json: { responder: pick.value } });
      } catch (e) { window.alert(t("error.generic", { msg: e.message })); }
      load();
    } }, o.state === "requested" ? t("field.panel.send") : t("field.panel.resend"));
    return el("td", {}, o.responder_name ? o.responder_name + " · " : "", pick, " ", go);
  }

  async function load() {
    const orders = await api("/api/field/orders?open=true");
    const cols = ["what", "who", "state", "responder", "due"];
    const rows = await Promise.all(orders.map(async (o) => el("tr", { class: "board-row st-" + o.state, "data-order": o.id },
      el("td", {}, what(o), o.request_note ? el("div", { class: "muted" }, o.request_note) : null),
      el("td", {}, (o.resident_name || o.site_name || o.site_id) + " · " + (o.address || "")),
      el("td", {}, t("field.state." + o.state),
        o.accept_overdue && (o.state === "dispatched" || o.state === "requested") ? el("div", { class: "flagged" }, t("field.accept_overdue")) : null,
        o.late && !o.arrived_at ? el("div", { class: "flagged" }, t("field.late")) : null),
      await dispatchCell(o),
      el("td", {}, o.arrived_at ? t("field.event.arrive") + " " + hhmm(o.arrived_at) : dateTime(o.arrive_due)))));
    document.getElementById("board").replaceChildren(orders.length
      ? el("table", { class: "coverage", id: "board-table" },
          el("thead", {}, el("tr", {}, cols.map((c) => el("th", {}, t("board.col." + c))))), el("tbody", {}, rows))
      : el("p", { class: "muted" }, t("board.none")));
  }

  async function start() {
    await EC.loadStrings();
    const langBtn = document.getElementById("lang");
    langBtn.textContent = t("lang.switch");
    langBtn.addEventListener("click", EC.toggleLang);
    document.addEventListener("langchange", () => { langBtn.textContent = t("lang.switch"); load(); });
    document.getElementById("logout").addEventListener("click", EC.signOut);
    const me = await api("/api/auth/me");
    document.getElementById("operator").textContent = me.display_name || me.username;
    await load();
    const source = new EventSource("/api/field/stream");
    for (const name of EVENTS) source.addEventListener(name, () => load().catch(() => {}));
  }
  start();
})();
