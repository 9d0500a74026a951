// Institution floor view: a grid of beds a nurse station keeps on a wall.
"use strict";
(() => {
  const { t, api, el } = EC;
  let siteId = null;

  function legend() {
    document.getElementById("legend").replaceChildren(
      ...[["occupied", "var(--ok)"], ["empty", "var(--line)"], ["out_of_bed", "var(--amber)"], ["alerting", "var(--red)"]]
        .map(([k, c]) => el("span", { style: "--c:" + c }, t(k === "out_of_bed" ? "floor.legend_out" : "floor." + k))));
  }

  async function load() {
    if (!siteId) return;
    const view = await api("/api/sites/" + encodeURIComponent(siteId) + "/floor");
    const groups = new Map();
    for (const b of view.beds) {
      const key = b.floor || "";
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push(b);
    }
    document.getElementById("floor").replaceChildren(...[...groups.entries()].map(([floor, beds]) =>
      el("section", { class: "floor-group" }, floor ? el("h2", {}, floor) : null,
        el("div", { class: "beds" }, beds.map((b) => {
          const cls = b.alerting ? "alerting" : b.state;
          let stateText = b.alerting ? t("floor.alerting") + ": " + b.alert_kinds.map((k) => t("kind." + k)).join("、")
            : b.state === "out_of_bed" ? t("floor.out_of_bed", { n: b.minutes_out })
            : t("floor." + b.state);
          return el("div", { class: "bed " + cls, "data-bed": b.bed_id || b.room_id },
            el("span", { class: "label" }, b.label),
            el("span", { class: "who" }, [b.room_name, b.resident_name].filter(Boolean).join(" · ")),
            el("div", { class: "state" }, stateText));
        })))));
  }

  async function start() {
    await EC.loadStrings();
    const me = await api("/api/auth/me");
    document.getElementById("operator").textContent = me.display_name;
    const langBtn = document.getElementById("lang");
    langBtn.textContent = t("lang.switch");
    langBtn.addEventListener("click", EC.toggleLang);
    document.addEventListener("langchange", () => { langBtn.textContent = t("lang.switch"); legend(); load(); });
    document.getElementById("logout").addEventListener("click", EC.signOut);
    let sites = await api("/api/sites?kind=institution");
    if (!sites.length) sites = await api("/api/sites");
    const select = document.getElementById("site");
    select.replaceChildren(...sites.map((s) => el("option", { value: s.id }, s.name)));
    siteId = new URLSearchParams(location.search).get("site") || (sites[0] && sites[0].id);
    if (siteId) select.value = siteId;
    select.addEventListener("change", () => { siteId = select.value; load(); });
    legend();
    await load();
    setInterval(load, 15000);
  }
  start();
})();
