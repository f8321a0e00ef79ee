// The agent's desk: the server sends its live part (state, screen pop) as rendered, escaped
// HTML whenever it changes; a ringing call also shows in the tab's title.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const desk = document.getElementById("desk");
  if (!desk || !window.EventSource) return;
  const title = document.title;
  const events = new EventSource(desk.dataset.events);
  events.onmessage = (message) => {
    const view = JSON.parse(message.data);
    desk.innerHTML = view.html;  // rendered by the server's autoescaping templates: no caller text is markup
    desk.dataset.phase = view.phase || "";
    document.title = view.phase === "ringing" ? "Ringing: " + title : title;
  };
});
