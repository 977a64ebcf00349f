// Idle logoff on screen: the server ends an idle session anyway; this takes PHI off an
// unattended screen when the time is up, and keeps the session alive while someone types.
(function () {
  "use strict";
  var body = document.body;
  var idle = parseInt(body.getAttribute("data-idle-seconds") || "0", 10);
  var csrf = body.getAttribute("data-csrf");
  if (!idle || !csrf) { return; }
  var deadline = Date.now() + idle * 1000;
  var lastPing = Date.now();
  function checkIdle() {
    if (Date.now() >= deadline) { window.location.assign("/sign-in?idle=1"); }
  }
  function activity() {
    var now = Date.now();
    if (now >= deadline) { return; }
    if (now - lastPing > 60000) {
      lastPing = now;
      fetch("/session/keepalive", { method: "POST", headers: { "X-CSRF-Token": csrf }, credentials: "same-origin" })
        .then(function (r) { if (r.ok) { deadline = Date.now() + idle * 1000; } });
    }
  }
  document.addEventListener("keydown", activity);
  document.addEventListener("pointerdown", activity);
  window.setInterval(checkIdle, 5000);
})();
