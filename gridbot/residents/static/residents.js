// The report form's two helps, for browsers that run scripts (the page works without):
// the emergency numbers appear as soon as urgent words are typed, and the entrance list
// shows only the chosen building's entrances.
(function () {
  "use strict";
  var text = document.getElementById("text");
  var box = document.getElementById("emergency");
  if (text && box) {
    var words = (text.getAttribute("data-urgent") || "").split("|").filter(Boolean);
    var check = function () {
      var typed = text.value.toLowerCase();
      box.hidden = !words.some(function (w) { return typed.indexOf(w.toLowerCase()) >= 0; });
    };
    text.addEventListener("input", check);
    check();
  }
  var building = document.getElementById("building");
  var unit = document.getElementById("unit");
  if (building && unit) {
    var filter = function () {
      Array.prototype.forEach.call(unit.options, function (o) {
        var b = o.getAttribute("data-building");
        o.hidden = !!b && !!building.value && b !== building.value;
        if (o.hidden && o.selected) { unit.value = ""; }
      });
    };
    building.addEventListener("change", filter);
    filter();
  }
  var photo = document.getElementById("photo");
  if (photo) {
    photo.addEventListener("change", function () {
      var max = +photo.getAttribute("data-max"), mb = +photo.getAttribute("data-mb");
      var files = Array.prototype.slice.call(photo.files || []);
      var bad = files.length > max || files.some(function (f) { return f.size > mb * 1048576; });
      photo.setCustomValidity(bad ? photo.labels[0].textContent : "");
    });
  }
})();
