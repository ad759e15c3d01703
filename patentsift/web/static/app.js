// Progressive enhancement (no inline scripts: CSP script-src 'self'): a link with data-load="URL"
// data-target="ID" fetches URL as a fragment into #ID instead of navigating; without JS it is a normal link.
document.addEventListener("click", async (event) => {
  const link = event.target.closest("a[data-load]");
  if (!link) return;
  const target = document.getElementById(link.dataset.target);
  if (!target) return;
  event.preventDefault();
  const response = await fetch(link.dataset.load, {headers: {"X-Fragment": "1"}, credentials: "same-origin"});
  if (response.ok) target.innerHTML = await response.text();  // server-rendered, autoescaped fragment
  else window.location.href = link.href;
});
