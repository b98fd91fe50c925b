// How the run pages write a run's measurements: bytes, counts, seconds, percentages. Shared by
// the training page, the compare page and the Pareto view.
export function fmtBytes(n) {
  if (n === null || n === undefined) return "—";
  const units = ["B", "KB", "MB", "GB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

export const fmtInt = (n) => (n === null || n === undefined ? "—" : Number(n).toLocaleString("en-US"));

export function fmtSeconds(s) {
  if (!isFinite(s)) return "—";
  return s < 90 ? `${s.toFixed(0)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

export const fmtMs = (x) => (x === undefined || x === null ? "—" : `${x.toFixed(1)} ms`);

// The precision a run's training steps computed in, as its metrics record it (workers/precision.py);
// runs from before the lab recorded it trained in fp32.
export const precisionOf = (m) => (m && m.precision) || "fp32";

// The same for a table cell: a dash until the run has finished.
export const fmtPrecision = (m) => (m.train_seconds === undefined ? "—" : precisionOf(m));

// An accuracy (a fraction) as a percentage with one decimal.
export const fmtAcc = (x) => (x === undefined || x === null ? "—" : `${(100 * x).toFixed(1)} %`);

// One colour per method on the run pages, far enough apart to tell nine methods apart.
export const METHOD_COLOURS = { full: "#4a5160", lora: "#e07b2a", dora: "#b3261e", qlora: "#7c2d12",
  adapter: "#3a5bd9", prefix: "#16a34a", prompt: "#9333ea", ia3: "#0891b2", bitfit: "#c9a000" };
