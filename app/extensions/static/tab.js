// The product tab in the PIM: ask the PIM for a token, then the App for the product with it, and
// show it as the App's own product page does (labels, the image, prices as people read them).
(function () {
  "use strict";
  var page = document.getElementById("tab");
  var pimOrigin = page.dataset.pimOrigin;
  var locale = (page.dataset.locale || "en_US").replace("_", "-"); // the PIM user's, as a tag
  var state = document.getElementById("tab-state");

  function show(text) { state.textContent = text; state.hidden = !text; }

  function render(answer) {
    if (!answer.product) { show(answer.message || "Not in the App's catalog."); return; }
    show(answer.in_selection ? "" : "Not in the App's catalog.");
    var title = document.getElementById("tab-title");
    title.textContent = answer.title || "(no title mapped)";
    title.hidden = false;
    if (answer.image) {
      var image = document.createElement("img");
      image.className = "large";
      image.src = answer.image.src;
      image.alt = answer.image.alt;
      var box = document.getElementById("tab-image");
      box.appendChild(image);
      box.hidden = false;
    }
    var values = document.getElementById("values");
    values.textContent = "";
    answer.values.forEach(function (value) {
      var term = document.createElement("dt");
      var text = document.createElement("dd");
      term.textContent = value.label;
      text.textContent = value.text;
      values.appendChild(term);
      values.appendChild(text);
    });
    values.hidden = false;
    var readAt = document.getElementById("read-at");
    var when = answer.read_at ? new Date(answer.read_at) : null;
    readAt.textContent = when
      ? "Read from the PIM into the App's copy on " + when.toLocaleString(locale) + "."
      : "Read from the PIM just now.";
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
