// Device health: offline devices and since when, low batteries, unknown devices sending data.
"use strict";
(() => {
  const { t, api, el, dateTime, duration } = EC;

  async function load() {
    const h = await api("/api/device-health");
    const now = Date.now() / 1000;
    document.getElementById("problems").replaceChildren(h.problems.length
      ? el("table", { class: "list", id: "problems-table" },
          el("thead", {}, el("tr", {}, ["problem", "site", "device", "since"].map((c) => el("th", {}, t("devices.col." + c))))),
          el("tbody", {}, h.problems.map((p) => el("tr", { class: "sev-" + (p.kind === "site_offline" ? "high" : "warning") },
            el("td", {}, el("span", { class: "sev-label" }, t("kind." + p.kind)),
              p.details && p.details.battery != null ? " " + Math.round(p.details.battery) + "%" : ""),
            el("td", {}, p.site_name),
            el("td", {}, [p.device_id, p.room_name || p.room_id].filter(Boolean).join(" · ")),
            el("td", {}, dateTime(p.since) + " (" + duration(now - p.since) + ")")))))
      : el("p", { class: "muted" }, t("devices.none")));
    // Everyone sees how much ingest could not place; the details are for admins.
    const intake = h.intake || {};
    const counts = intake.unregistered_devices == null && !intake.quarantined_messages ? null
      : el("p", { id: "intake", class: intake.unregistered_devices || intake.quarantined_messages ? "" : "muted" },
          intake.unregistered_devices == null ? "" : t("devices.intake.unregistered", { n: intake.unregistered_devices }),
          intake.quarantined_messages ? t("devices.intake.quarantined", {
            n: intake.quarantined_messages,
            newest: intake.newest_quarantined_at ? dateTime(intake.newest_quarantined_at) : "–" }) : "",
          h.unregistered_available ? "" : " " + t("devices.intake.tell_admin"));
    document.getElementById("unregistered").replaceChildren(counts || "", !h.unregistered_available
      ? (counts ? "" : el("p", { class: "muted" }, t("devices.not_available")))
      : h.unregistered.length
        ? el("table", { class: "list" },
            el("thead", {}, el("tr", {}, ["identity", "last_seen", "messages", "sample"].map((c) => el("th", {}, t("devices.col." + c))))),
            el("tbody", {}, h.unregistered.map((u) => el("tr", {},
            el("td", {}, u.key), el("td", {}, u.last_seen ? dateTime(u.last_seen) : ""),
            el("td", {}, u.messages ?? ""), el("td", {}, el("code", {}, u.sample || ""))))))
        : el("p", { class: "muted" }, t("devices.none")));
    document.getElementById("quarantine-block").hidden = !h.unregistered_available;
    document.getElementById("quarantined").replaceChildren(h.quarantined.length
      ? el("table", { class: "list" },
          el("thead", {}, el("tr", {}, ["received", "cause", "topic", "sample"].map((c) => el("th", {}, t("devices.col." + c))))),
          el("tbody", {}, h.quarantined.map((q) => el("tr", {},
            el("td", {}, dateTime(q.received_at)), el("td", {}, q.cause + (q.detail ? ": " + q.detail : "")),
            el("td", {}, q.topic), el("td", {}, el("code", {}, q.payload))))))
      : el("p", { class: "muted" }, t("devices.none")));
  }

  async function start() {
    await EC.loadStrings();
    const me = await api("/api/auth/me");
    document.getElementById("operator").textContent = me.display_name;
    const langBtn = document.getElementById("lang");
    langBtn.textContent = t("lang.switch");
    langBtn.addEventListener("click", EC.toggleLang);
    document.addEventListener("langchange", () => { langBtn.textContent = t("lang.switch"); load(); });
    document.getElementById("logout").addEventListener("click", EC.signOut);
    await load();
    setInterval(load, 30000);
  }
  start();
})();
