// The connected page's sync progress: polls /sync/status while a sync runs (the CSP forbids
// inline scripts, hence this file), and reloads the page once it is done to show the result.
(function () {
  "use strict";
  var box = document.getElementById("sync");
  if (!box) return;
  var state = document.getElementById("sync-state");
  var bar = document.getElementById("sync-progress");
  var wasActive = box.dataset.active === "yes";

  function show(status) {
    state.textContent = status.text;
    bar.hidden = !status.active;
    if (status.progress) {
      bar.max = status.progress[1];
      bar.value = status.progress[0];
    } else {
      bar.removeAttribute("value"); // an indeterminate bar: the end is not known yet
    }
  }

  function poll() {
    fetch(box.dataset.statusUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (answer) { return answer.ok ? answer.json() : null; })
      .then(function (status) {
        if (!status) return;
        show(status);
        if (wasActive && !status.active) {
          window.location.reload();
          return;
        }
        wasActive = status.active;
        if (status.active) window.setTimeout(poll, 1000);
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }

  if (wasActive) window.setTimeout(poll, 1000);
})();
