// Small behaviours the pages work without: a submit button disabled while its form posts,
// copy buttons, times shown in the viewer's zone (UTC in the title).
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.dataset.noBusy === undefined) {
    form.setAttribute("aria-busy", "true");
    // After this turn: the entry list (with the clicked button's name) is built first.
    setTimeout(() => form.querySelectorAll('button[type="submit"]').forEach((b) => { b.disabled = true; }), 0);
  }
});
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  try {
    await navigator.clipboard.writeText(source.value ?? source.textContent.trim());
    button.textContent = "Copied";
  } catch {
    source.select?.();
    button.textContent = "Press Ctrl+C";
  }
});
function localTimes(root) {
  root.querySelectorAll("time[data-local]").forEach((t) => {
    const at = new Date(t.getAttribute("datetime"));
    if (Number.isNaN(at.getTime())) return;
    t.title = at.toISOString().replace("T", " ").slice(0, 19) + " UTC";
    t.textContent = at.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  });
}
document.addEventListener("DOMContentLoaded", () => localTimes(document));
document.addEventListener("htmx:afterSwap", (event) => localTimes(event.target));
