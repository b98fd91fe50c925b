// What the visitor has done, kept in this browser's localStorage: which playgrounds they have
// explored (moved a control in) and their quiz answers. One module owns the storage keys; every
// save announces itself with a "peftlab:progress" event (other tabs and frames get "storage").
const EXPLORED = "peftlab.explored.v1";
const ANSWERS = "peftlab.quiz.v1";
export const CHANGED = "peftlab:progress";

function read(key) {
  try {
    return JSON.parse(localStorage.getItem(key) || "{}") || {};
  } catch {
    return {};
  }
}

function write(key, value) {
  localStorage.setItem(key, JSON.stringify(value));
  window.dispatchEvent(new CustomEvent(CHANGED));
}

export const explored = () => read(EXPLORED);

export function markExplored(slug) {
  const all = explored();
  if (all[slug]) return;
  all[slug] = new Date().toISOString();
  write(EXPLORED, all);
}

// question id → {text, correct}; answers saved before `correct` was kept are plain strings.
export function answers() {
  const all = read(ANSWERS);
  for (const [id, value] of Object.entries(all)) {
    if (typeof value === "string") all[id] = { text: value, correct: null };
  }
  return all;
}

export function saveAnswer(id, text, correct) {
  const all = answers();
  all[id] = { text, correct };
  write(ANSWERS, all);
}

export function forgetAnswers(ids) {
  const all = answers();
  ids.forEach((id) => delete all[id]);
  write(ANSWERS, all);
}

// One chapter's standing: playgrounds explored of those live, quiz questions answered right.
export function chapterProgress(slugs, questionIds) {
  const seen = explored();
  const given = answers();
  const exploredCount = slugs.filter((s) => seen[s]).length;
  const right = questionIds.filter((id) => given[id] && given[id].correct === true).length;
  const total = slugs.length + questionIds.length;
  return { explored: exploredCount, playgrounds: slugs.length, right, questions: questionIds.length,
    share: total ? (exploredCount + right) / total : 0, done: total > 0 && exploredCount + right === total };
}

export function onProgress(callback) {
  window.addEventListener(CHANGED, callback);
  window.addEventListener("storage", callback);
}
