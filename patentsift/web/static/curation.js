// The curation queue without reloads: j/k move over the cards (and, in an opened card, its subscriptions),
// e open/close a card, x select, a approve, r reject, p pin/unpin, n note (Enter saves, Escape leaves), u undo.
// A key acts on the selection (after a confirmation) when cards are selected, else on the cursor: a card decides
// every subscription it matched, a subscription row only that one. Decisions are POSTed with the CSRF token and
// the server's re-rendered cards replace the old ones in place; the cursor stays where it was.
(function () {
  "use strict";
  var form = document.getElementById("queue-form");
  if (!form) { return; }
  var list = form.querySelector("ol.queue");
  var note = document.getElementById("note");
  var live = document.getElementById("live");
  var dialog = document.getElementById("confirm-dialog");
  var undoBar = document.getElementById("undo-bar");
  var csrf = form.querySelector("input[name=csrf_token]").value;
  var cursor = null;
  var noteTarget = null;
  var lastEvent = null;

  function text(name, values) {
    var s = form.dataset[name] || "";
    Object.keys(values || {}).forEach(function (k) { s = s.split("{" + k + "}").join(values[k]); });
    return s;
  }
  function say(message) { live.textContent = message; }
  function cardOf(el) { return el && el.closest("li.item"); }
  function isRow(el) { return !!el && el.classList.contains("sub"); }
  function targets() {
    return Array.prototype.slice.call(form.querySelectorAll("li.item, li.item details[open] li.sub"));
  }
  function setCursor(el) {
    if (cursor && cursor !== el) { cursor.classList.remove("current"); }
    cursor = el;
    if (!el) { return; }
    el.classList.add("current");
    el.focus({preventScroll: true});
    el.scrollIntoView({block: "nearest"});
  }
  function move(step) {
    var all = targets();
    if (!all.length) { return; }
    var at = all.indexOf(cursor);
    var next = at < 0 ? (step > 0 ? 0 : all.length - 1) : Math.max(0, Math.min(all.length - 1, at + step));
    setCursor(all[next]);
  }
  function box(card) { return card.querySelector(".pick input[name=ids]"); }
  function selected() {
    return Array.prototype.slice.call(list ? list.querySelectorAll("li.item") : []).filter(function (c) {
      return box(c).checked;
    });
  }
  function words(value) { return (value || "").split(/[\s,]+/).filter(Boolean); }
  function decidable(el) {
    if (isRow(el)) { return el.dataset.sent ? [] : [el.dataset.id]; }
    return words(box(el).value);
  }
  function shownOf(cards) {
    return cards.reduce(function (all, c) { return all.concat(words(c.dataset.items)); }, []);
  }

  function post(url, fields) {
    var body = new URLSearchParams();
    Object.keys(fields).forEach(function (k) {
      [].concat(fields[k]).forEach(function (v) { if (v !== null && v !== undefined) { body.append(k, v); } });
    });
    return fetch(url, {method: "POST", body: body, credentials: "same-origin",
                       headers: {"X-CSRF-Token": csrf, "Accept": "application/json"}})
      .then(function (res) {
        return res.json().catch(function () { return {}; }).then(function (data) {
          if (!res.ok) { throw new Error(data.error || data.detail || res.statusText); }
          return data;
        });
      });
  }

  function swap(html) {
    var keepDoc = cardOf(cursor) ? cardOf(cursor).dataset.doc : null;
    var keepRow = isRow(cursor) ? cursor.dataset.id : null;
    var fresh = document.createElement("template");
    fresh.innerHTML = html;
    Array.prototype.slice.call(fresh.content.querySelectorAll("li.item")).forEach(function (card) {
      var old = list.querySelector("li.item[data-doc=\"" + CSS.escape(card.dataset.doc) + "\"]");
      if (!old) { return; }
      card.querySelector("details").open = old.querySelector("details").open;
      old.replaceWith(card);
    });
    var card = keepDoc && list.querySelector("li.item[data-doc=\"" + CSS.escape(keepDoc) + "\"]");
    var row = card && keepRow && card.querySelector("li.sub[data-id=\"" + keepRow + "\"]");
    cursor = null;
    setCursor(row || card || null);
  }

  function confirmBulk(action, cards, count) {
    return new Promise(function (resolve) {
      dialog.querySelector(".question").textContent = text("msgConfirm", {
        action: form.dataset["label" + action.charAt(0).toUpperCase() + action.slice(1)] || action,
        docs: cards.length, n: count});
      dialog.returnValue = "";
      dialog.addEventListener("close", function done() {
        dialog.removeEventListener("close", done);
        resolve(dialog.returnValue === "confirm");
      });
      dialog.showModal();
      dialog.querySelector("button.primary").focus();
    });
  }

  function act(action, noteText, target) {
    var cards = selected();
    var here = target || cursor;
    var bulk = cards.length > 0 && !isRow(here);
    if (!bulk && !here) { return Promise.resolve(); }
    var on = bulk ? cards : [here];
    var ids = on.reduce(function (all, el) { return all.concat(decidable(el)); }, []);
    if (!ids.length) { say(text("msgSent")); return Promise.resolve(); }
    if (action === "pin" && on.every(function (el) { return el.dataset.pinned === "1"; })) { action = "unpin"; }
    var shown = shownOf(bulk ? cards : [cardOf(here)]);
    var fields = {action: action, shown: shown.join(" "), note: noteText === undefined ? null : noteText};
    if (isRow(here) && !bulk) { fields.override = action + ":" + here.dataset.id; }
    else { fields.ids = ids.join(" "); }
    var asked = bulk ? confirmBulk(action, on, ids.length) : Promise.resolve(true);
    return asked.then(function (ok) {
      if (!ok) { setCursor(cursor); return; }
      return post("/curation/decide", fields).then(function (res) {
        swap(res.cards);
        lastEvent = {event: res.event, shown: shown.join(" ")};
        undoBar.hidden = false;
        undoBar.querySelector(".text").textContent = text("msgDone", {n: res.count}) + " (" +
          text("msgUndoHint") + ")";
        say(text("msgDone", {n: res.count}));
      });
    }).catch(function (err) { say(err.message); });
  }

  function undoLast() {
    if (!lastEvent) { return Promise.resolve(); }
    var last = lastEvent;
    lastEvent = null;
    return post("/curation/undo", {event: last.event, shown: last.shown}).then(function (res) {
      swap(res.cards);
      undoBar.hidden = true;
      say(text("msgUndone", {n: res.count}));
    }).catch(function (err) { say(err.message); });
  }

  function toggleOpen(el) {
    var card = cardOf(el);
    if (!card) { return; }
    var details = card.querySelector("details");
    details.open = !details.open;
    setCursor(card);
  }

  function startNote() {
    var here = cursor;
    if (!here && !selected().length) { return; }
    noteTarget = here;
    note.value = here ? here.dataset.note || "" : "";
    note.focus();
    note.select();
  }

  document.addEventListener("keydown", function (ev) {
    if (dialog.open) { return; }  // the dialog's own keys: Enter confirms, Escape cancels
    var tag = (ev.target.tagName || "").toLowerCase();
    if (tag === "input" && ev.target.type === "text" || tag === "textarea" || tag === "select") { return; }
    if (ev.ctrlKey || ev.metaKey || ev.altKey) { return; }
    switch (ev.key) {
      case "j": move(1); break;
      case "k": move(-1); break;
      case "e": toggleOpen(cursor); break;
      case "Enter":
        if (!cursor || ev.target.closest("a, button, summary")) { return; }
        toggleOpen(cursor);
        break;
      case "x":
        if (cardOf(cursor)) { var b = box(cardOf(cursor)); if (!b.disabled) { b.checked = !b.checked; } }
        break;
      case "a": act("approve"); break;
      case "r": act("reject"); break;
      case "p": act("pin"); break;
      case "n": startNote(); break;
      case "u": undoLast(); break;
      default: return;
    }
    ev.preventDefault();
  });

  note.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter") {
      ev.preventDefault();
      var target = noteTarget;
      note.blur();
      setCursor(target);
      act("annotate", note.value, target).then(function () { note.value = ""; });
    } else if (ev.key === "Escape") {
      ev.preventDefault();
      note.blur();
      setCursor(noteTarget);
    }
  });

  form.addEventListener("click", function (ev) {
    var button = ev.target.closest("button[data-action]");
    if (!button) { return; }
    ev.preventDefault();
    var row = button.closest("li.sub");
    if (row) { setCursor(row); }
    var action = button.dataset.action;
    act(action, action === "annotate" ? note.value : undefined, row || cursor);
  });
  form.addEventListener("focusin", function (ev) {
    var el = ev.target.closest("li.sub, li.item");
    if (el && el !== cursor && (ev.target === el)) { setCursor(el); }
  });
  undoBar.querySelector("button.undo").addEventListener("click", function () { undoLast(); });

  var all = document.getElementById("select-all");
  if (all) {
    all.addEventListener("change", function () {
      Array.prototype.slice.call(list ? list.querySelectorAll("li.item") : []).forEach(function (c) {
        if (!box(c).disabled) { box(c).checked = all.checked; }
      });
    });
  }
})();
