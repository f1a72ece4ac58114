// Small progressive enhancements; the site works without them.
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  var search = document.querySelector("form.search");
  if (search) {
    search.addEventListener("submit", function (event) {
      var q = search.querySelector("input[name=q]");
      if (q && q.value.trim().length < 2) {
        event.preventDefault();
        q.focus();
      }
    });
  }
  document.querySelectorAll("img.avatar").forEach(function (img) {
    img.addEventListener("error", function () { img.style.visibility = "hidden"; });
  });
})();
