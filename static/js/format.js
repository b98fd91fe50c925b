// How the pages write numbers: a run's measurements (bytes, seconds, percentages) and counts with
// thousands separators. A dash stands for a missing value.
export function fmtBytes(n) {
  if (n === null || n === undefined) return "—";
  const units = ["B", "KB", "MB", "GB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

// A count with thousands separators: 1,234,567.
export const fmtInt = (n) => (n === null || n === undefined ? "—" : Number(n).toLocaleString("en-US"));

// A size in bytes with decimal units and three significant digits: 1.50 GB, 312 kB, 512 bytes.
export function fmtSize(b) {
  const units = [["TB", 1e12], ["GB", 1e9], ["MB", 1e6], ["kB", 1e3]];
  for (const [unit, size] of units) if (b >= size) return `${(b / size).toPrecision(3)} ${unit}`;
  return `${fmtInt(b)} bytes`;
}

// A share (a fraction) as a percentage with three significant digits, two under 1 %: 12.5%, 0.42%.
export const fmtShare = (x) => `${(100 * x).toPrecision(x >= 0.01 ? 3 : 2)}%`;

export function fmtSeconds(s) {
  if (!isFinite(s)) return "—";
  return s < 90 ? `${s.toFixed(0)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

export const fmtMs = (x) => (x === undefined || x === null ? "—" : `${x.toFixed(1)} ms`);

// The precision a run's training steps computed in, as its metrics record it (workers/precision.py);
// runs from before the lab recorded it trained in fp32.
export const precisionOf = (m) => (m && m.precision) || "fp32";

// The device a run trained on (its metrics' "device"; runs from before the lab recorded it name it
// in how their peak was measured).
export const deviceOf = (m) => (m && m.device) || (m && String(m.peak_memory_source || "").startsWith("cuda") ? "cuda" : "cpu");

// The same for a table cell: a dash until the run has finished.
export const fmtPrecision = (m) => (m.train_seconds === undefined ? "—" : precisionOf(m));

// An accuracy (a fraction) as a percentage with one decimal.
export const fmtAcc = (x) => (x === undefined || x === null ? "—" : `${(100 * x).toFixed(1)} %`);

