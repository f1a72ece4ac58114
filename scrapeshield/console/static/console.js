// Every page: ask before a form marked data-confirm acts; count down legal deadlines.
"use strict";
document.addEventListener("submit", (event) => {
  const text = event.target.getAttribute && event.target.getAttribute("data-confirm");
  if (text && !window.confirm(text)) event.preventDefault();
});

function countdowns() {
  const now = Date.now() / 1000;
  for (const el of document.querySelectorAll(".countdown[data-deadline]")) {
    let left = Number(el.dataset.deadline) - now;
    const late = left < 0;
    left = Math.abs(left);
    const d = Math.floor(left / 86400), h = Math.floor(left % 86400 / 3600), m = Math.floor(left % 3600 / 60);
    el.textContent = (late ? "overdue by " : "") + (d ? d + "d " : "") + h + "h " + m + "m" + (late ? "" : " left");
    el.classList.toggle("late", late);
  }
}
countdowns();
setInterval(countdowns, 30000);
