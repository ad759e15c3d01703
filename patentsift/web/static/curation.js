// Curation queue keys: j/k move, x select, a approve, r reject, n annotate (focus the note), p pin.
(function () {
  "use strict";
  var form = document.getElementById("queue-form");
  if (!form) { return; }
  var items = Array.prototype.slice.call(form.querySelectorAll("li.item"));
  var current = -1;
  function focus(i) {
    if (!items.length) { return; }
    current = Math.max(0, Math.min(items.length - 1, i));
    items.forEach(function (el, n) { el.classList.toggle("current", n === current); });
    items[current].focus();
    items[current].scrollIntoView({block: "nearest"});
  }
  function box(i) { return items[i] && items[i].querySelector("input[name=ids]"); }
  function submit(action) {
    var any = items.some(function (_, i) { return box(i).checked; });
    if (!any && current >= 0) { box(current).checked = true; }
    var button = form.querySelector("button[data-action=" + action + "]");
    if (button) { button.click(); }
  }
  var all = document.getElementById("select-all");
  if (all) {
    all.addEventListener("change", function () { items.forEach(function (_, i) { box(i).checked = all.checked; }); });
  }
  document.addEventListener("keydown", function (ev) {
    var tag = (ev.target.tagName || "").toLowerCase();
    if (tag === "input" && ev.target.type === "text" || tag === "textarea" || tag === "select") { return; }
    if (ev.ctrlKey || ev.metaKey || ev.altKey) { return; }
    switch (ev.key) {
      case "j": focus(current + 1); break;
      case "k": focus(current - 1); break;
      case "x": if (current >= 0) { box(current).checked = !box(current).checked; } break;
      case "a": submit("approve"); break;
      case "r": submit("reject"); break;
      case "p": submit("pin"); break;
      case "n":
        if (current >= 0) { box(current).checked = true; }
        document.getElementById("note").focus();
        break;
      default: return;
    }
    ev.preventDefault();
  });
  var note = document.getElementById("note");
  note.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter") { ev.preventDefault(); submit("annotate"); }
  });
})();
