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
