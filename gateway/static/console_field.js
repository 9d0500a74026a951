// The console's dispatch panel: send a responder to the door from the selected alert
// (on-duty responders of the site's community proposed first), follow the order live,
// send someone else after a decline or a missed accept time.
"use strict";
const ECField = (() => {
  const { t, api, el, hhmm } = EC;
  const EVENTS = ["requested", "dispatched", "accept", "decline", "on_the_way", "arrive", "done",
    "redispatch", "cancel", "accept_overdue", "late"];
  let current = null;  // { alert, node }

  function term(prefix, key) { const s = t(prefix + key); return s === prefix + key ? key : s; }

  function orderLine(o, responders) {
    const times = [
      o.accepted_at ? term("field.event.", "accept") + " " + hhmm(o.accepted_at) : null,
      o.on_the_way_at ? term("field.event.", "on_the_way") + " " + hhmm(o.on_the_way_at) : null,
      o.arrived_at ? term("field.event.", "arrive") + " " + hhmm(o.arrived_at) : null,
    ].filter(Boolean).join(" · ");
    const flags = [o.accept_overdue && o.state === "dispatched" ? t("field.accept_overdue") : null,
      o.late && !o.arrived_at ? t("field.late") : null].filter(Boolean).join(" · ");
    const stuck = o.state === "declined" || (o.state === "dispatched" && o.accept_overdue);
    let resend = null;
    if (stuck) {
      const pick = el("select", { class: "field-resend-who" },
        responders.filter((r) => r.username !== o.responder).map((r) =>
          el("option", { value: r.username }, r.name + (r.on_duty ? t("field.panel.on_duty_mark") : ""))));
      resend = el("span", {}, pick, el("button", { type: "button", class: "field-resend",
        onclick: () => act(o.id, "redispatch", { responder: pick.value }) }, t("field.panel.resend")));
    }
    return el("li", { class: "field-order st-" + o.state, "data-order": o.id },
      el("strong", {}, (o.responder_name || o.responder) + " · "),
      el("span", { class: "field-state" }, t("field.state." + o.state)),
      " · " + t("field.dispatched_at", { time: hhmm(o.dispatched_at) }),
      times ? " · " + times : "",
      o.decline_reason ? " · " + t("field.panel.reason", { reason: o.decline_reason }) : "",
      o.outcome ? " · " + t("outcome." + o.outcome) : "",
      flags ? el("span", { class: "flagged" }, " " + flags) : null,
      resend);
  }

  async function act(orderId, step, body) {
    try {
      await api("/api/field/orders/" + encodeURIComponent(orderId) + "/" + step, { method: "POST", json: body });
    } catch (e) { window.alert(t("error.generic", { msg: e.message })); }
    refresh();
  }

  async function fill(alert, node) {
    const [orders, responders] = await Promise.all([
      api("/api/field/orders?alert_id=" + encodeURIComponent(alert.id)),
      api("/api/field/responders?site_id=" + encodeURIComponent(alert.site_id)),
    ]);
    if (!current || current.alert.id !== alert.id) return;
    const pick = el("select", { id: "dispatch-who" }, responders.map((r) =>
      el("option", { value: r.username }, r.name + " · " + term("field.kind.", r.kind) +
        (r.on_duty ? t("field.panel.on_duty_mark") : ""))));
    const send = el("button", { type: "button", id: "dispatch-go", disabled: !responders.length || alert.handling === "resolved",
      onclick: async () => {
        try {
          await api("/api/field/orders", { method: "POST", json: { alert_id: alert.id, responder: pick.value } });
        } catch (e) { window.alert(t("error.generic", { msg: e.message })); }
        refresh();
      } }, t("field.panel.send"));
    node.replaceChildren(el("h3", {}, t("field.panel")),
      orders.length ? el("ol", { class: "field-orders" }, orders.map((o) => orderLine(o, responders))) : null,
      responders.length ? el("div", { class: "field-dispatch" }, el("label", {}, t("field.panel.who") + " ", pick), " ", send)
        : el("p", { class: "muted" }, t("field.panel.none")));
  }

  function refresh() {
    if (current && current.node.isConnected) fill(current.alert, current.node).catch(() => {});
  }

  // Called by console.js when it draws an alert's detail: returns the panel's card.
  function panel(alert) {
    const node = el("section", { class: "card field-panel", id: "field-panel" }, el("h3", {}, t("field.panel")));
    current = { alert, node };
    fill(alert, node).catch(() => {});
    return node;
  }

  let source = null;
  function connect() {
    source = new EventSource("/api/field/stream");
    for (const name of EVENTS) source.addEventListener(name, refresh);
    source.onerror = () => { if (source.readyState === EventSource.CLOSED) setTimeout(connect, 3000); };
  }
  document.addEventListener("DOMContentLoaded", connect);

  return { panel };
})();
