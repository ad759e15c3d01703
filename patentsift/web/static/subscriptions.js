// Subscription forms: the cron field shows only for "custom (cron)", and the expression is shown in words as it
// is typed (GET /api/frequency/words, in the UI language). Without scripts the form still works: the server
// checks every field and the list shows each frequency in words.
"use strict";
(function () {
  function setup(fieldset) {
    const choice = fieldset.querySelector(".frequency-choice");
    const cron = fieldset.querySelector("input.cron");
    const words = fieldset.querySelector(".cron-words");
    if (!choice || !cron || !words) return;
    let timer = null;
    function describe() {
      const isCron = choice.value === "cron";
      cron.closest("label").hidden = !isCron;
      const value = isCron ? cron.value.trim() : choice.value;
      if (!isCron) { words.textContent = ""; return; }
      if (!value) { words.textContent = ""; return; }
      clearTimeout(timer);
      timer = setTimeout(function () {
        fetch("/api/frequency/words?" + new URLSearchParams({ frequency: value }), { credentials: "same-origin" })
          .then(function (r) { return r.ok ? r.json() : null; })
          .then(function (data) {
            if (!data || cron.value.trim() !== value) return;
            words.textContent = data.words;
            words.classList.toggle("invalid", !data.valid);
          })
          .catch(function () { /* the server checks it on save */ });
      }, 200);
    }
    choice.addEventListener("change", describe);
    cron.addEventListener("input", describe);
    describe();
  }
  document.querySelectorAll("fieldset.frequency").forEach(setup);
})();
