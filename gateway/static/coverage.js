// Visit coverage for supervisors: per unit and month (needed, visited, overdue, rate),
// the CSV return for the civil-affairs bureau, and the overdue list.
"use strict";
(() => {
  const { t, api, el, dateTime } = EC;
  const DEPTHS = ["", "2", "3"];

  function thisMonth() {
    const d = new Date();
    return d.getFullYear() + "-" + String(d.getMonth() + 1).padStart(2, "0");
  }

  function pct(rate) { return rate === null ? "–" : (100 * rate).toFixed(1) + "%"; }

  async function load() {
    const month = document.getElementById("month").value || thisMonth();
    const depth = document.getElementById("depth").value;
    const q = "month=" + encodeURIComponent(month) + (depth ? "&depth=" + depth : "");
    document.getElementById("csv").href = "/api/field/coverage.csv?" + q;
    const [rows, overdue] = await Promise.all([
      api("/api/field/coverage?" + q),
      api("/api/field/visits/owed?status_filter=overdue"),
    ]);
    const cols = ["unit", "needed", "visited", "overdue", "due", "rate"];
    document.getElementById("coverage").replaceChildren(el("table", { class: "coverage", id: "coverage-table" },
      el("thead", {}, el("tr", {}, cols.map((c) => el("th", {}, t("coverage." + c))))),
      el("tbody", {}, rows.map((r) => el("tr", { class: r.unit ? "" : "total" },
        el("td", {}, r.unit || t("coverage.total")), el("td", {}, r.needed), el("td", {}, r.visited),
        el("td", {}, r.overdue), el("td", {}, r.due),
        el("td", { class: r.rate !== null && r.rate < 1 ? "low" : "" }, pct(r.rate)))))));
    document.getElementById("overdue").replaceChildren(overdue.length
      ? el("table", { class: "list", id: "overdue-table" }, el("tbody", {}, overdue.map((o) => el("tr", {},
          el("td", {}, o.resident_name), el("td", {}, o.address),
          el("td", {}, EC.lang === "zh-CN" ? o.category_zh : o.category_en),
          el("td", {}, o.last_visit_at ? t("visit.last", { time: dateTime(o.last_visit_at) }) : t("visit.never"))))))
      : el("p", { class: "muted" }, t("visit.none")));
  }

  async function start() {
    await EC.loadStrings();
    const langBtn = document.getElementById("lang");
    langBtn.textContent = t("lang.switch");
    langBtn.addEventListener("click", EC.toggleLang);
    document.getElementById("logout").addEventListener("click", EC.signOut);
    const me = await api("/api/auth/me");
    document.getElementById("operator").textContent = me.display_name || me.username;
    const depth = document.getElementById("depth");
    const fill = () => depth.replaceChildren(...DEPTHS.map((d) =>
      el("option", { value: d }, d ? String(d) : t("coverage.depth.full"))));
    fill();
    document.addEventListener("langchange", () => { langBtn.textContent = t("lang.switch"); fill(); load(); });
    document.getElementById("month").value = thisMonth();
    document.getElementById("month").addEventListener("change", load);
    depth.addEventListener("change", load);
    await load();
  }
  start();
})();
