// The operators' wallboard refreshes itself: the period's figure cards, and each queue against
// its thresholds. Values go in with textContent only.
"use strict";

const REFRESH_MS = 5000;

function percent(value) {
  return value === null || value === undefined ? "-" : Math.round(100 * value) + "%";
}

async function refreshFigures(cards) {
  const reply = await fetch(cards.dataset.refresh + window.location.search, {credentials: "same-origin"});
  if (!reply.ok) return;
  const figures = await reply.json();
  const total = figures.total;
  const shown = {"total-calls": total.calls, "total-containment": percent(total.containment),
                 "total-handoff-rate": percent(total.handoff_rate), "total-service-level": percent(total.service_level),
                 "total-abandon-rate": percent(total.abandon_rate),
                 "total-wait": total.average_wait_s === null ? "-" : total.average_wait_s,
                 "callbacks-open": figures.callbacks_open};
  for (const [id, value] of Object.entries(shown)) {
    const card = document.getElementById(id);
    if (card) card.textContent = String(value);
  }
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
  const cards = document.getElementById("totals");
  if (cards && cards.dataset.refresh) setInterval(() => refreshFigures(cards), REFRESH_MS);
  const queues = document.getElementById("queues");
  const alerts = document.getElementById("queue-alerts");
  if (queues && alerts) setInterval(() => refreshQueues(queues, alerts), REFRESH_MS);
});
