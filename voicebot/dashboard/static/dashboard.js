// Live tables and training progress refresh themselves. Values go in with textContent only:
// callers can say anything, and none of it may ever run as markup.
"use strict";

function cell(row, value) {
  const td = document.createElement("td");
  td.textContent = value === null || value === undefined ? "" : String(value);
  row.appendChild(td);
  return td;
}

async function refreshLiveCalls(table) {
  const reply = await fetch(table.dataset.refresh || "/dashboard/live.json", {credentials: "same-origin"});
  if (!reply.ok) return;
  const data = await reply.json();
  const header = table.rows[0];
  while (table.rows.length > 1) table.deleteRow(1);
  for (const call of data.calls) {
    const row = table.insertRow();
    const link = document.createElement("a");
    link.href = "/dashboard/calls/" + encodeURIComponent(call.id);
    link.textContent = call.id.slice(0, 12);
    cell(row, "").appendChild(link);
    for (const value of [call.tenant, call.state, call.intent, call.seconds, call.waited_s].slice(0, header.cells.length - 1)) {
      cell(row, value);
    }
  }
}

// A table wider than the screen scrolls sideways in its .table-scroll box: such a box takes the
// keyboard focus (arrow keys scroll it) and is named after the table's caption or heading for a
// screen reader. Boxes that fit stay out of the tab order.
function headingBefore(element) {
  for (let e = element.previousElementSibling || element.parentElement; e; e = e.previousElementSibling || e.parentElement) {
    if (/^H[1-6]$/.test(e.tagName)) return e.textContent.trim();
  }
  return "";
}

function markScrollers() {
  for (const box of document.querySelectorAll(".table-scroll")) {
    if (box.scrollWidth > box.clientWidth) {
      const caption = box.querySelector("caption");
      box.tabIndex = 0;
      box.setAttribute("role", "region");
      box.setAttribute("aria-label", (caption ? caption.textContent.trim() : headingBefore(box)) || "Table");
    } else {
      box.removeAttribute("tabindex");
      box.removeAttribute("role");
      box.removeAttribute("aria-label");
    }
  }
}

// Phases in which nothing moves without a trainer: the page shows the report then.
const STOPPED = ["waiting", "done", "failed", "discarded"];

async function pollTraining(section) {
  const reply = await fetch(section.dataset.poll, {credentials: "same-origin"});
  if (!reply.ok) return;
  const job = await reply.json();
  if (!job) return;
  document.getElementById("phase").textContent = job.phase;
  document.getElementById("detail").textContent = job.detail;
  document.getElementById("remaining").textContent =
    job.remaining_s === null ? "" : "about " + Math.round(job.remaining_s) + " s left";
  document.getElementById("progress").value = job.progress;
  if (STOPPED.includes(job.phase)) {
    window.location.reload();  // the report, and the buttons for a decision
    return true;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  markScrollers();
  window.addEventListener("resize", markScrollers);
  const live = document.getElementById("live-calls");
  if (live && live.dataset.refresh !== undefined) {
    setInterval(() => refreshLiveCalls(live).then(markScrollers), 5000);
  }
  const training = document.getElementById("training");
  if (training && !STOPPED.includes(document.getElementById("phase").textContent)) {
    const timer = setInterval(async () => { if (await pollTraining(training)) clearInterval(timer); }, 1000);
  }
  const find = document.getElementById("find-call");
  if (find) {
    find.addEventListener("submit", (event) => {
      event.preventDefault();
      window.location = "/dashboard/calls/" + encodeURIComponent(find.elements.id.value.trim());
    });
  }
});
