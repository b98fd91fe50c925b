// What the P23 and P24 pages share: the task list, the Start button (POST /api/experiments), the
// experiment followed every ~2 s until its last run finishes, the table of its runs, and the
// state in the URL (?experiment=<id>). Without one in the URL the page shows the latest finished
// experiment of its kind, or, if none has run, the runs it would queue (their expected trainable
// parameters come from the server's formula) and empty charts that say so.
import { $, ACCENT, GOOD, errorBox, getJson, postJson, readQuery, writeQuery } from "./lab.js";
import { fmtInt } from "./format.js";

const POLL_MS = 2000;
export const COLOURS = [ACCENT, "#d9733a", GOOD, "#8a3ab9"];
export const fmtPct = (x) => (x === null || x === undefined ? "—" : `${(100 * x).toFixed(1)}%`);
export const fmtNum = (x) => (x === null || x === undefined ? "—" : Number(x).toFixed(3));

function esc(s) {
  return String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
}

export const succeeded = (exp) => (exp ? exp.runs.filter((r) => r.status === "succeeded") : []);

// Ticks 1, 2, 5 × 10^k spanning [low, high], labelled 10k, 20k, 1M...: a log axis that reads plainly.
export function logTicks(low, high) {
  const tickvals = [];
  for (let k = Math.floor(Math.log10(low)); k <= Math.ceil(Math.log10(high)); k++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** k;
      if (v >= low / 2 && v <= high * 2) tickvals.push(v);
    }
  }
  const text = (v) => (v >= 1e6 ? `${v / 1e6}M` : v >= 1e3 ? `${v / 1e3}k` : String(v));
  return { tickvals, ticktext: tickvals.map(text) };
}

// page: {kind, readOptions(): extra body fields, fillOptions(URLSearchParams), draw(exp|null)}
export function experimentPage(page) {
  const root = document.getElementById("exp-root");
  let timer = null;
  let shown = null; // the experiment on screen

  const setError = errorBox("exp-error");

  function writeUrl(id) {
    const params = readQuery();
    params.set("experiment", id);
    writeQuery(params);
  }

  function drawTable(rows, planned) {
    $("exp-runs").querySelector("tbody").innerHTML = rows.map((r) => {
      const name = planned ? esc(r.label) : `<a href="${esc(r.url)}">${esc(r.label)}</a>`;
      const status = planned ? "not started" : r.status;
      return `<tr data-status="${esc(status)}"><td>${name}</td>
        <td class="status-${esc(r.status || "")}">${esc(status)}${r.error ? `: ${esc(r.error)}` : ""}</td>
        <td class="num">${fmtInt(r.trainable_params_expected)}</td><td class="num">${fmtInt(r.trainable_params)}</td>
        <td class="num">${fmtPct(r.val_accuracy)}</td><td class="num">${fmtNum(r.train_loss)}</td>
        <td class="num">${fmtNum(r.val_loss)}</td>
        <td class="num">${r.train_seconds === null || r.train_seconds === undefined ? "—" : `${r.train_seconds.toFixed(1)} s`}</td></tr>`;
    }).join("");
  }

  function show(exp, how) {
    shown = exp;
    const done = exp.runs.filter((r) => ["succeeded", "failed", "cancelled"].includes(r.status)).length;
    const total = exp.runs.length;
    $("exp-progress").style.width = `${(100 * done) / total}%`;
    const when = new Date(exp.created_at).toLocaleString();
    const lead = how === "latest" ? "Showing the latest finished experiment: " : "";
    $("exp-status").textContent = `${lead}#${exp.id} on ${exp.task}, ${exp.steps} step${exp.steps === 1 ? "" : "s"} per run, ` +
      `started ${when}: ${done} of ${total} runs finished (${exp.status}).`;
    drawTable(exp.runs, false);
    page.draw(exp);
    root.dataset.experiment = exp.id;
    root.dataset.finished = done;
    root.dataset.state = exp.status === "running" ? "running" : "finished";
  }

  async function follow(id) {
    clearTimeout(timer);
    try {
      const exp = await getJson(`/api/experiments/${id}`);
      show(exp, "url");
      setError("");
      if (exp.status === "running") timer = setTimeout(() => follow(id), POLL_MS);
    } catch (err) {
      setError(err.message); // an unknown id, or the server gone: say so, poll no more
    }
  }

  async function showPlan() {
    const plan = await getJson(`/api/experiments/plan?kind=${page.kind}&task=${encodeURIComponent($("exp-task").value)}`);
    shown = null;
    $("exp-progress").style.width = "0%";
    $("exp-status").textContent = `No ${page.noun} has run yet. Press Start to queue these ${plan.runs.length} ` +
      "runs; the table shows what each will train before it runs.";
    drawTable(plan.runs, true);
    page.draw(null);
    root.dataset.state = "plan";
  }

  async function start() {
    const button = $("exp-start");
    button.disabled = true;
    setError("");
    try {
      const exp = await postJson("/api/experiments", {
        kind: page.kind, task: $("exp-task").value, steps: Number($("exp-steps").value), seed: 0,
        ...page.readOptions(),
      });
      writeUrl(exp.id);
      show(exp, "url");
      timer = setTimeout(() => follow(exp.id), POLL_MS);
    } catch (err) {
      setError(err.message);
    } finally {
      button.disabled = false;
    }
  }

  async function init() {
    const params = readQuery();
    const tasks = await getJson("/api/tasks");
    $("exp-task").innerHTML = tasks.map((t) => `<option value="${esc(t.name)}">${esc(t.title)} (${t.train_size} train)</option>`).join("");
    if (params.get("task") && tasks.some((t) => t.name === params.get("task"))) $("exp-task").value = params.get("task");
    const plan = await getJson(`/api/experiments/plan?kind=${page.kind}&task=${encodeURIComponent($("exp-task").value)}`);
    $("exp-steps").value = params.get("steps") || (plan ? plan.steps : "");
    page.fillOptions(params, plan);
    $("exp-start").addEventListener("click", start);
    $("exp-task").addEventListener("change", () => { if (!shown) showPlan().catch((e) => setError(e.message)); });
    const id = params.get("experiment");
    if (id) return follow(id);
    const latest = await getJson(`/api/experiments?kind=${page.kind}&finished=true&limit=1`);
    if (latest.length) show(latest[0], "latest");
    else await showPlan();
  }

  init().catch((err) => setError(err.message)).finally(() => { root.dataset.ready = "1"; });
}
