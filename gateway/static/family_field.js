// The family portal's helper line: "a helper is on the way / arrived at 14:32", live.
"use strict";
const ECFamilyField = (() => {
  const { t, api, hhmm } = EC;
  const EVENTS = ["requested", "dispatched", "accept", "decline", "on_the_way", "arrive", "done",
    "redispatch", "cancel"];
  const RECENT_S = 12 * 3600;
  let resident = null;  // { site_id, id }
  let helpers = [];
  let source = null;

  function sentence(h) {
    const vars = { who: h.responder_name };
    if (h.state === "on_the_way") vars.time = hhmm(h.on_the_way_at);
    if (h.state === "arrived") vars.time = hhmm(h.arrived_at);
    if (h.state === "done") vars.outcome = h.outcome ? t("outcome." + h.outcome) : "";
    if (h.request_kind) vars.kind = t("request.kind." + h.request_kind);
    return t("family.helper." + h.state, vars);
  }

  function render() {
    const line = document.getElementById("helper");
    if (!line) return;
    const now = Date.now() / 1000;
    // The latest order she can be told about: declined ones went back to the centre.
    const h = helpers.find((x) => x.state !== "declined" &&
      (x.closed_at === null || now - x.closed_at < RECENT_S));
    line.hidden = !h;
    line.textContent = h ? sentence(h) : "";
  }

  let lastVisit = null;

  function renderVisit() {
    const line = document.getElementById("last-visit");
    if (!line) return;
    line.hidden = !lastVisit;
    line.textContent = lastVisit ? t("family.visit.last", { time: EC.dateTime(lastVisit.visited_at),
      who: lastVisit.responder_name || lastVisit.responder, mode: t("visit.mode." + lastVisit.mode) }) : "";
  }

  async function loadVisit() {
    const visits = await api("/api/field/sites/" + encodeURIComponent(resident.site_id) +
      "/residents/" + encodeURIComponent(resident.id) + "/visits");
    lastVisit = visits.find((v) => v.outcome !== "not_reached") || null;
    renderVisit();
  }

  async function load() {
    if (!resident) return;
    helpers = await api("/api/field/sites/" + encodeURIComponent(resident.site_id) +
      "/residents/" + encodeURIComponent(resident.id) + "/helpers");
    render();
  }

  function connect() {
    source = new EventSource("/api/field/stream");
    for (const name of EVENTS) source.addEventListener(name, () => load().catch(() => {}));
    source.onerror = () => { if (source.readyState === EventSource.CLOSED) setTimeout(connect, 3000); };
  }

  // "Ask for help at home": a service request for the relative shown.
  const KINDS = ["meal", "medicine", "cleaning", "accompany_hospital", "repair", "other"];
  function requestForm() {
    const form = document.getElementById("request-form");
    if (!form || form.dataset.ready) return;
    form.dataset.ready = "1";
    const fill = () => document.getElementById("request-kind").replaceChildren(...KINDS.map((k) =>
      EC.el("option", { value: k }, t("request.kind." + k))));
    fill();
    document.addEventListener("langchange", fill);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const msg = document.getElementById("request-msg");
      try {
        await api("/api/field/requests", { method: "POST", json: { site_id: resident.site_id,
          resident_id: resident.id, kind: document.getElementById("request-kind").value,
          note: document.getElementById("request-note").value.trim() || null } });
        document.getElementById("request-note").value = "";
        msg.textContent = t("family.request.sent");
        msg.className = "saved";
        await load();
      } catch (e) {
        msg.textContent = t("error.generic", { msg: e.message });
        msg.className = "error";
      }
    });
  }

  // Called by family.js whenever it draws the relative's view.
  function show(residentView) {
    const changed = !resident || resident.id !== residentView.id;
    resident = { site_id: residentView.site_id, id: residentView.id };
    requestForm();
    if (changed) {
      load().catch(() => {});
      loadVisit().catch(() => {});
    } else {
      render();
      renderVisit();
    }
    if (!source) connect();
  }

  return { show };
})();
