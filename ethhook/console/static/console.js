// EthHook console: confirmation before consequential forms, and a copy button. Nothing else.
"use strict";
document.addEventListener("submit", (event) => {
  const message = event.target.dataset.confirm;
  if (message && !window.confirm(message)) {
    event.preventDefault();
  }
});
document.addEventListener("click", (event) => {
  const id = event.target.dataset && event.target.dataset.copy;
  if (!id || !navigator.clipboard) {
    return;
  }
  navigator.clipboard.writeText(document.getElementById(id).textContent).then(() => {
    event.target.textContent = "Copied";
  });
});
// A running replay's page: its progress from /replays/<id>/progress every second until it ends.
const POLL_MS = 1000;
function poll(card) {
  fetch(card.dataset.poll, { credentials: "same-origin", headers: { Accept: "application/json" } })
    .then((answer) => (answer.ok && answer.headers.get("content-type") === "application/json" ? answer.json() : null))
    .then((job) => {
      if (!job) {
        return; // signed out, or gone: the page as it is says what was last known
      }
      const bar = document.getElementById("replay-progress");
      bar.max = job.blocks_total;
      bar.value = job.blocks_done;
      const state = document.getElementById("replay-state");
      state.textContent = job.state;
      state.className = "badge replay-" + job.state;
      document.getElementById("replay-line").textContent = job.line;
      document.getElementById("replay-chunks").textContent = job.chunks_done.toLocaleString("en");
      document.getElementById("replay-events").textContent = job.events.toLocaleString("en");
      document.getElementById("replay-deliveries").textContent = job.deliveries.toLocaleString("en");
      document.getElementById("replay-error-text").textContent = job.error || "–";
      if (job.finished) {
        const cancel = document.getElementById("cancel-form");
        if (cancel) {
          cancel.remove();
        }
        document.getElementById("replay-live").textContent = "";
        return;
      }
      setTimeout(() => poll(card), POLL_MS);
    })
    .catch(() => setTimeout(() => poll(card), POLL_MS * 5));
}
document.addEventListener("DOMContentLoaded", () => {
  const card = document.querySelector("[data-poll]");
  if (card) {
    setTimeout(() => poll(card), POLL_MS);
  }
});
