// The live overview: polls /console/api/overview and updates charts, figures and top lists in
// place. Text from traffic (client names, routes, labels) is set with textContent, never as HTML.
"use strict";
(function () {
  const base = "/console";
  const colours = { allow: "#3fb950", throttle: "#d29922", challenge: "#e3b341", block: "#f85149",
                    tarpit: "#db6d28", degrade: "#a371f7", decoy: "#d2a8ff" };
  Chart.defaults.color = "#8b949e";
  Chart.defaults.borderColor = "#30363d";
  Chart.defaults.animation = false;
  const label = (t) => new Date(t * 1000).toISOString().slice(11, 19);
  const actions = new Chart(document.getElementById("chart-actions"), {
    type: "line",
    data: { labels: [], datasets: Object.keys(colours).map((a) => ({
      label: a, data: [], borderColor: colours[a], backgroundColor: colours[a], pointRadius: 0, tension: 0.25 })) },
    options: { responsive: true, interaction: { mode: "index", intersect: false },
               scales: { y: { beginAtZero: true } }, plugins: { legend: { position: "bottom" } } },
  });
  const records = new Chart(document.getElementById("chart-records"), {
    type: "bar",
    data: { labels: [], datasets: [{ label: "distinct records served", data: [], backgroundColor: "#58a6ff" }] },
    options: { responsive: true, scales: { y: { beginAtZero: true } }, plugins: { legend: { display: false } } },
  });

  function cell(row, text, cls) {
    const td = row.insertCell();
    td.textContent = String(text);
    if (cls) td.className = cls;
    return td;
  }
  function linkCell(row, href, text) {
    const a = document.createElement("a");
    a.href = href;
    a.textContent = text;
    row.insertCell().appendChild(a);
  }
  function table(id, rows, fill) {
    const body = document.querySelector("#" + id + " tbody");
    body.replaceChildren();
    for (const r of rows) fill(body.insertRow(), r);
  }
  let updates = 0;
  function apply(data) {
    const s = data.series;
    actions.data.labels = s.times.map(label);
    actions.data.datasets.forEach((ds) => { ds.data = s.actions[ds.label] || []; });
    actions.update();
    records.data.labels = s.minutes.map((t) => label(t).slice(0, 5));
    records.data.datasets[0].data = s.records_served;
    records.update();
    for (const el of document.querySelectorAll("[data-kpi]")) {
      const k = el.dataset.kpi;
      el.textContent = String(k === "lists" ? data.lists : (data.totals[k] || 0));
    }
    table("top-clients", data.top_clients, (row, c) => {
      linkCell(row, base + "/clients/" + encodeURIComponent(c.client), c.client);
      cell(row, c.events, "num"); cell(row, Math.round(c.score), "num");
    });
    table("top-campaigns", data.top_campaigns, (row, c) => {
      linkCell(row, base + "/campaigns/" + encodeURIComponent(c.id), c.label);
      cell(row, c.clients, "num"); cell(row, c.records, "num"); cell(row, Math.round(c.score), "num");
    });
    table("top-routes", data.top_routes, (row, r) => {
      cell(row, r.route || "(none)"); cell(row, r.events, "num"); cell(row, r.clients, "num");
    });
    updates += 1;
    document.body.dataset.updates = String(updates);
  }
  const state = document.getElementById("live-state");
  async function poll() {
    try {
      const response = await fetch(base + "/api/overview", { credentials: "same-origin", cache: "no-store" });
      if (response.status === 401) { window.location = base + "/login?next=" + encodeURIComponent(base + "/"); return; }
      apply(await response.json());
      state.textContent = "● live"; state.classList.remove("stale");
    } catch (err) {
      state.textContent = "● reconnecting"; state.classList.add("stale");
    }
  }
  poll();
  setInterval(poll, 2000);
})();
