// The profile editor (profile_edit.html), progressive enhancement under the CSP (no inline scripts):
// - "Preview as edited" posts the form as it is (CSRF header) and renders the server's fragment in place, with a
//   progress indicator; the form keeps its contents; the draft's errors go next to their fields.
// - the applicants field shows which stored applicant names each line matches, refreshed as the user types.
// Without JS the same buttons submit the form and the server renders the whole page.
(() => {
  const form = document.getElementById("profile-form");
  if (!form) return;
  const csrf = document.querySelector("meta[name=csrf-token]")?.content || "";
  const progress = document.getElementById("preview-progress");
  const results = document.getElementById("preview-results");
  const formErrors = document.getElementById("form-errors");

  function clearErrors() {
    form.querySelectorAll(".field-error").forEach((e) => e.remove());
    form.querySelectorAll("[aria-invalid]").forEach((e) => e.removeAttribute("aria-invalid"));
    formErrors.replaceChildren();
  }

  function placeErrors(fragment) {
    const box = fragment.querySelector(".preview-errors");
    if (!box) return;
    const summary = document.createElement("div");
    summary.className = "error";
    summary.setAttribute("role", "alert");
    summary.textContent = form.dataset.invalid;
    formErrors.appendChild(summary);
    box.querySelectorAll("[data-field]").forEach((error) => {
      const field = form.querySelector(`.field[data-name="${CSS.escape(error.dataset.field)}"]`);
      if (!field) {
        summary.appendChild(error);
        return;
      }
      field.appendChild(error);
      field.querySelector("input, textarea")?.setAttribute("aria-invalid", "true");
    });
    box.remove();
  }

  async function preview(button) {
    clearErrors();
    progress.hidden = false;
    results.setAttribute("aria-busy", "true");
    button.disabled = true;
    try {
      const response = await fetch(button.formAction, {
        method: "POST", body: new URLSearchParams(new FormData(form)), credentials: "same-origin",
        headers: {"X-Fragment": "1", "X-CSRF-Token": csrf},
      });
      if (!response.ok && response.status !== 422) throw new Error(String(response.status));
      const template = document.createElement("template");
      template.innerHTML = await response.text();  // server-rendered, autoescaped
      placeErrors(template.content);
      results.replaceChildren(template.content);
      if (response.status === 422) formErrors.scrollIntoView({block: "nearest"});
      else results.scrollIntoView({block: "nearest"});
    } catch (error) {
      const failed = document.createElement("p");
      failed.className = "error";
      failed.textContent = `${form.dataset.failed} (${error.message})`;
      results.replaceChildren(failed);
    } finally {
      progress.hidden = true;
      results.removeAttribute("aria-busy");
      button.disabled = false;
    }
  }

  form.addEventListener("submit", (event) => {
    const button = event.submitter;
    if (!button || !button.hasAttribute("data-preview")) return;  // Save: a normal submit
    event.preventDefault();
    preview(button);
  });

  const applicants = form.querySelector("textarea[name=applicants]");
  const watch = document.getElementById("applicant-watch");
  if (!applicants || !watch) return;
  let timer = 0;
  let latest = 0;
  async function refreshWatch() {
    const mine = ++latest;
    const url = `${form.dataset.watchUrl}?${new URLSearchParams({applicants: applicants.value})}`;
    try {
      const response = await fetch(url, {headers: {"X-Fragment": "1"}, credentials: "same-origin"});
      if (response.ok && mine === latest) watch.innerHTML = await response.text();  // server-rendered, autoescaped
    } catch (_) { /* the list stays as it was; the next keystroke tries again */ }
  }
  applicants.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(refreshWatch, 350);
  });
})();
