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

// The urgent-message alarm: every signed-in clinician's screen asks every 5 s whether an
// urgent patient message is waiting for someone to acknowledge it, and shows the banner at
// once (no PHI in it). The poll does not count as activity: an idle screen still signs out.
(function () {
  "use strict";
  var body = document.body;
  if (!body.getAttribute("data-csrf") || !body.hasAttribute("data-alarms")) { return; }
  var csrf = body.getAttribute("data-csrf");
  function banner() {
    var found = document.getElementById("urgent-messages");
    if (found) { return found; }
    var box = document.createElement("div");
    box.id = "urgent-messages";
    box.className = "alarm";
    box.setAttribute("role", "alert");
    var header = document.querySelector("header.top");
    header.parentNode.insertBefore(box, header.nextSibling);
    return box;
  }
  function show(waiting) {
    var old = document.getElementById("urgent-messages");
    if (!waiting.length) { if (old) { old.remove(); } return; }
    var box = banner();
    box.textContent = "";
    var text = document.createElement("span");
    var first = waiting[0];
    text.textContent = waiting.length + " urgent patient message" + (waiting.length > 1 ? "s" : "") +
      " waiting (oldest " + first.waiting_minutes + " min). ";
    box.appendChild(text);
    var open = document.createElement("a");
    open.href = first.work_item ? "/review/" + first.work_item : "/review?pool=urgent";
    open.textContent = "Open it";
    box.appendChild(open);
    var form = document.createElement("form");
    form.method = "post";
    form.action = "/triage/" + first.id + "/acknowledge";
    var token = document.createElement("input");
    token.type = "hidden"; token.name = "csrf_token"; token.value = csrf;
    var button = document.createElement("button");
    button.type = "submit"; button.id = "acknowledge-urgent"; button.textContent = "Acknowledge";
    form.appendChild(token); form.appendChild(button);
    box.appendChild(form);
  }
  function poll() {
    fetch("/alarms", { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data) { show(data.urgent); } })
      .catch(function () { /* the next poll tries again */ });
  }
  poll();
  window.setInterval(poll, 5000);
})();
