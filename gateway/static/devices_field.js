// The device-health page's test schedule (JGJ/T 484): last test and next due of every
// emergency button and fall device, overdue tests, and faults not fixed within 2 hours.
"use strict";
(() => {
  const { t, api, el, dateTime } = EC;

  async function load() {
    const box = document.getElementById("device-tests");
    if (!box) return;
    let rows;
    try { rows = await api("/api/field/device-tests"); } catch (e) { box.textContent = ""; return; }
    box.replaceChildren(rows.length ? el("table", { class: "list", id: "device-tests-table" },
      el("thead", {}, el("tr", {}, ["site", "device", "last", "next", "state"].map((c) => el("th", {}, t("devtest.col." + c))))),
      el("tbody", {}, rows.map((r) => el("tr", { class: r.fault_overdue ? "sev-high" : r.overdue ? "sev-warning" : "" },
        el("td", {}, r.site_name), el("td", {}, r.device_id + " · " + t("device_kind." + r.kind)),
        el("td", {}, r.last_test_at ? dateTime(r.last_test_at)
          + (r.last_test_source === "device" ? " · " + t("devtest.by_device") : "") : t("devtest.never")),
        el("td", {}, dateTime(r.next_due)),
        el("td", {}, r.fault_overdue ? t("devtest.fault_overdue", { since: dateTime(r.fault_since) })
          : r.fault_since ? t("devtest.fault", { since: dateTime(r.fault_since) })
          : r.overdue ? t("devtest.overdue") : t("devtest.ok"))))))
      : el("p", { class: "muted" }, t("devices.none")));
  }

  document.addEventListener("DOMContentLoaded", () => {
    const main = document.querySelector("main");
    if (!main) return;
    main.append(el("section", { class: "block" }, el("h2", { "data-i18n": "devtest.title" }),
      el("div", { id: "device-tests" })));
    // Strings arrive with the page's own loading; draw when they are there and on changes.
    setTimeout(function wait() {
      if (t("devtest.title") === "devtest.title") { setTimeout(wait, 200); return; }
      main.querySelector("[data-i18n='devtest.title']").textContent = t("devtest.title");
      load();
    }, 200);
    document.addEventListener("langchange", () => {
      main.querySelector("[data-i18n='devtest.title']").textContent = t("devtest.title");
      load();
    });
    setInterval(load, 60000);
  });
})();
