// Octobox dashboard: live updates from the API's event streams (Server-Sent Events).
// Plain JavaScript, no build step. The streams authenticate with the session cookie.
"use strict";

// The most rows the jobs table keeps while it follows new jobs.
const MAX_ROWS = 200;

function statusText(s) { return (s || "").replace(/_/g, " "); }

function setStatus(container, status) {
  const el = container.querySelector('[data-role="status"]');
  if (!el || !status) return;
  el.textContent = statusText(status);
  el.className = "status " + status;
}

function shortId(id) { return id.slice(0, 8); }

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text;
  return td;
}

// A new row for a job first seen in the stream.
function newRow(ev) {
  const tr = document.createElement("tr");
  tr.dataset.job = ev.job;
  tr.className = "fresh";
  const link = document.createElement("a");
  link.href = "/ui/jobs/" + ev.job;
  const code = document.createElement("code");
  code.textContent = shortId(ev.job);
  link.appendChild(code);
  const first = document.createElement("td");
  first.appendChild(link);
  tr.appendChild(first);
  const command = cell(ev.command || "");
  command.dataset.role = "command";
  tr.appendChild(command);
  const statusTd = document.createElement("td");
  const span = document.createElement("span");
  span.dataset.role = "status";
  statusTd.appendChild(span);
  tr.appendChild(statusTd);
  const requester = cell(ev.requester || "");
  requester.dataset.role = "requester";
  tr.appendChild(requester);
  const when = ev.created_at ? new Date(ev.created_at) : new Date();
  tr.appendChild(cell(when.toISOString().slice(0, 19).replace("T", " ")));
  const worker = cell("");
  worker.dataset.role = "worker";
  tr.appendChild(worker);
  setStatus(tr, "queued");
  return tr;
}

function statusOf(ev) {
  switch (ev.event) {
    case "queued": return "queued";
    case "started": return "running";
    case "finished": return ev.status;
    default: return null;
  }
}

// Whether a job the table does not show yet belongs on it, by the page's filters.
function matches(table, ev, status) {
  const want = table.dataset;
  if (want.text) return false; // text search needs the server
  if (want.command && want.command !== ev.command) return false;
  if (want.requester && want.requester !== ev.requester) return false;
  if (want.adapter && want.adapter !== ev.adapter) return false;
  if (want.status && status && !want.status.split(",").map(s => s.trim()).includes(status)) return false;
  return true;
}

function followJobs(table) {
  const body = table.querySelector("tbody");
  const source = new EventSource("/api/v1/events");
  source.onmessage = (message) => {
    const ev = JSON.parse(message.data);
    if (ev.event === "lagged") { window.location.reload(); return; }
    const status = statusOf(ev);
    let row = body.querySelector('tr[data-job="' + ev.job + '"]');
    if (!row) {
      if (table.dataset.live !== "yes" || !ev.command || !matches(table, ev, status)) return;
      row = newRow(ev);
      body.insertBefore(row, body.firstChild);
      // A page shows a page of jobs: the oldest rows go as new ones come, so a busy
      // Octobox does not grow the page without bound.
      while (body.rows.length > MAX_ROWS) body.deleteRow(-1);
      const empty = document.getElementById("empty");
      if (empty) empty.remove();
    }
    if (status) setStatus(row, status);
    if (ev.worker) {
      const w = row.querySelector('[data-role="worker"]');
      if (w) w.textContent = ev.worker;
    }
  };
}

function showResult(id) {
  fetch("/api/v1/jobs/" + id, { credentials: "same-origin" })
    .then((r) => r.json())
    .then((job) => {
      const result = document.getElementById("result");
      result.textContent = "";
      if (job.error) {
        const p = document.createElement("p");
        p.className = "error"; p.id = "error"; p.textContent = job.error;
        result.appendChild(p);
      }
      const out = job.output;
      if (out && out.kind === "text") {
        const pre = document.createElement("pre");
        pre.id = "output"; pre.textContent = out.text + (out.truncated ? "\n…" : "");
        result.appendChild(pre);
      } else if (out && out.kind === "file") {
        const p = document.createElement("p");
        p.id = "output"; p.textContent = "a file: " + out.file_name + " (" + out.file_size + " bytes)";
        result.appendChild(p);
      }
      if (job.finished_at) document.getElementById("finished").textContent = job.finished_at.slice(0, 19).replace("T", " ");
      const cancel = document.getElementById("cancel");
      if (cancel) cancel.closest("form").remove();
    })
    .catch(() => {});
}

function followJob(dl) {
  const id = dl.dataset.job;
  if (dl.dataset.final === "yes") return;
  const source = new EventSource("/api/v1/jobs/" + id + "/events");
  const progress = document.getElementById("progress");
  source.onmessage = (message) => {
    const ev = JSON.parse(message.data);
    if (ev.event === "lagged") { window.location.reload(); return; }
    if (ev.event === "state") {
      setStatus(dl, ev.status);
      if (["succeeded", "failed", "timed_out", "cancelled"].includes(ev.status)) { source.close(); showResult(id); }
      return;
    }
    const status = statusOf(ev);
    if (status) setStatus(dl, status);
    if (ev.worker) document.getElementById("worker").textContent = ev.worker;
    if (ev.event === "started") document.getElementById("started").textContent = ev.at.slice(0, 19).replace("T", " ");
    if (ev.event === "progress" && ev.line !== null) progress.textContent += ev.line + "\n";
    if (ev.event === "finished") { source.close(); dl.dataset.final = "yes"; showResult(id); }
  };
}

document.addEventListener("DOMContentLoaded", () => {
  const table = document.getElementById("jobs");
  if (table) followJobs(table);
  const job = document.getElementById("job");
  if (job) followJob(job);
});
