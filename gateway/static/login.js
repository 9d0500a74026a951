"use strict";
(async () => {
  await EC.loadStrings();
  const langBtn = document.getElementById("lang");
  const showLang = () => { langBtn.textContent = EC.t("lang.switch"); };
  showLang();
  langBtn.addEventListener("click", () => { EC.toggleLang(); showLang(); });
  document.getElementById("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const err = document.getElementById("login-error");
    err.hidden = true;
    const resp = await fetch("/api/auth/login", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        username: document.getElementById("username").value,
        password: document.getElementById("password").value,
      }),
    });
    if (!resp.ok) {
      err.textContent = EC.t("login.failed");
      err.hidden = false;
      return;
    }
    const body = await resp.json();
    const next = new URLSearchParams(location.search).get("next");
    const homes = { family: "/family", responder: "/field" };
    const home = homes[body.account.role] || "/console";
    location.href = next && next.startsWith("/") && !next.startsWith("//") ? next : home;
  });
})();
