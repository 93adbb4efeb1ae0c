// The connected page's live-changes panel: while the subscription is being made (or waits to
// activate), polls /events/status and shows what it says, so the panel never needs a reload
// (the CSP forbids inline scripts, hence this file).
(function () {
  "use strict";
  var box = document.getElementById("events-state");
  if (!box) return;
  var badge = document.getElementById("events-badge");
  var text = document.getElementById("events-text");
  var form = document.getElementById("subscribe-form");

  function show(status) {
    badge.textContent = status.badge;
    badge.className = "status " + (status.tone === "ok" ? "ok" : "warn");
    text.textContent = status.text;
    form.hidden = !status.retry;
  }

  function poll() {
    fetch(box.dataset.statusUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (answer) { return answer.ok ? answer.json() : null; })
      .then(function (status) {
        if (!status) return;
        show(status);
        if (status.tone === "wait") window.setTimeout(poll, 2000);
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }

  if (box.dataset.tone === "wait") window.setTimeout(poll, 1000);
})();
