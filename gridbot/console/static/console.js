// gridbot console: the one script. Pages work without it; with it, the board and the
// notice view refresh themselves, and nothing else happens behind the person's back.
(function () {
  "use strict";
  function refresh(box) {
    var url = box.getAttribute("data-refresh");
    var every = Math.max(2, parseInt(box.getAttribute("data-every") || "5", 10)) * 1000;
    var last = box.innerHTML;
    function tick() {
      if (document.hidden) { return setTimeout(tick, every); }
      fetch(url, {credentials: "same-origin", headers: {"X-Requested-With": "fetch"}})
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (html !== null && html !== last) {
            var focused = document.activeElement && box.contains(document.activeElement);
            if (!focused) { box.innerHTML = html; last = html; box.setAttribute("data-updated", Date.now()); }
          }
          setTimeout(tick, every);
        })
        .catch(function () { setTimeout(tick, every * 2); });
    }
    setTimeout(tick, every);
  }
  document.addEventListener("DOMContentLoaded", function () {
    var boxes = document.querySelectorAll("[data-refresh]");
    for (var i = 0; i < boxes.length; i++) { refresh(boxes[i]); }
  });
})();
