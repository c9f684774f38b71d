// The report's render check. Once the page has loaded it records, in a hidden div (id render-check),
// how many images the page has, how many decoded (naturalWidth > 0), and any script or resource errors
// or blocked requests. Headless browsers (tests/test_report_browser.py) read it from the DOM.
(function () {
  var errors = [];
  var origError = console.error;
  console.error = function () { errors.push("console.error: " + Array.prototype.join.call(arguments, " ")); origError.apply(console, arguments); };
  window.addEventListener("error", function (e) {
    var t = e.target;
    if (t && t.tagName) { errors.push("failed to load " + t.tagName.toLowerCase() + " " + (t.alt || t.src || "").slice(0, 80)); }
    else { errors.push("script error: " + e.message); }
  }, true);
  document.addEventListener("securitypolicyviolation", function (e) { errors.push("blocked request: " + e.blockedURI); });
  window.addEventListener("load", function () {
    var imgs = document.images, loaded = 0;
    for (var i = 0; i < imgs.length; i++) { if (imgs[i].complete && imgs[i].naturalWidth > 0) { loaded++; } }
    var d = document.createElement("div");
    d.id = "render-check"; d.hidden = true;
    d.setAttribute("data-images", String(imgs.length));
    d.setAttribute("data-loaded", String(loaded));
    d.setAttribute("data-errors", JSON.stringify(errors));
    document.body.appendChild(d);
  });
})();
