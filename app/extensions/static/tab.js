// The product tab in the PIM: ask the PIM for a token, then the App for the product with it.
(function () {
  "use strict";
  var page = document.getElementById("tab");
  var pimOrigin = page.dataset.pimOrigin;
  var state = document.getElementById("tab-state");

  function show(text) { state.textContent = text; }

  function render(answer) {
    var values = document.getElementById("values");
    values.textContent = "";
    if (!answer.product) { show(answer.message || "Not in the App's catalog."); return; }
    show(answer.in_selection ? "In the App's catalog." : "");
    Object.keys(answer.product).forEach(function (name) {
      var term = document.createElement("dt");
      var value = document.createElement("dd");
      var data = answer.product[name];
      term.textContent = name;
      value.textContent = typeof data === "object" ? JSON.stringify(data) : String(data);
      values.appendChild(term);
      values.appendChild(value);
    });
    values.hidden = false;
    var readAt = document.getElementById("read-at");
    readAt.textContent = answer.read_at ? "Read into the App's copy at " + answer.read_at : "Read from the PIM just now.";
    readAt.hidden = false;
  }

  window.addEventListener("message", function (event) {
    // only the PIM that framed this page may hand it a token
    if (event.origin !== pimOrigin || !event.data || event.data.type !== "JWT_TOKEN") { return; }
    var url = page.dataset.url + "?uuid=" + encodeURIComponent(page.dataset.product);
    fetch(url, { headers: { Authorization: "Bearer " + event.data.token }, credentials: "omit" })
      .then(function (response) { return response.json().then(function (body) { return [response.ok, body]; }); })
      .then(function (result) { if (result[0]) { render(result[1]); } else { show(result[1].message); } })
      .catch(function () { show("The App did not answer."); });
  });
  window.parent.postMessage({ type: "request_jwt" }, pimOrigin);
}());
