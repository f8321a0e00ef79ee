// The operators' wallboard refreshes itself: the period's figures (cards, tables, over time), as
// the server renders them, and each queue against its thresholds (values with textContent only).
"use strict";

const REFRESH_MS = 5000;  // the queues, from memory
const FIGURES_REFRESH_MS = 10000;  // the period's figures, from the store: its queries share the machine with calls

function percent(value) {
  return value === null || value === undefined ? "-" : Math.round(100 * value) + "%";
}

async function refreshFigures(figures) {
  if (figures.dataset.held || figures.contains(document.activeElement)) return;  // someone chooses in its form
  const reply = await fetch(figures.dataset.refresh + window.location.search, {credentials: "same-origin"});
  if (!reply.ok) return;
  // The server's own rendering of the same part (escaped there); no script runs from it.
  const fresh = new DOMParser().parseFromString(await reply.text(), "text/html");
  figures.replaceChildren(...fresh.body.childNodes);
}

async function refreshQueues(table, alerts) {
  const reply = await fetch("/dashboard/live.json", {credentials: "same-origin"});
  if (!reply.ok) return;
  const health = (await reply.json()).health;
  for (const queue of health) {
    const row = table.querySelector(`tr[data-queue="${CSS.escape(queue.id)}"]`);
    if (!row) continue;
    row.cells[1].textContent = String(queue.waiting);
    row.cells[2].textContent = String(queue.longest_wait_s);
    row.cells[3].textContent = percent(queue.service_level);
    row.classList.toggle("over", queue.over.length > 0);
  }
  alerts.textContent = health.filter((q) => q.over.length).map((q) => q.name + ": " + q.over.join("; ") + ".").join(" ");
}

document.addEventListener("DOMContentLoaded", () => {
  const figures = document.getElementById("figures");
  if (figures) {
    figures.addEventListener("change", () => { figures.dataset.held = "1"; });  // until the form is sent
    setInterval(() => refreshFigures(figures), FIGURES_REFRESH_MS);
  }
  const queues = document.getElementById("queues");
  const alerts = document.getElementById("queue-alerts");
  if (queues && alerts) setInterval(() => refreshQueues(queues, alerts), REFRESH_MS);
});
