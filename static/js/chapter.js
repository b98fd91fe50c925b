// A chapter page: its playgrounds live in same-origin frames that grow to their content, and
// the progress box follows what the visitor explores and answers (here or in another tab).
import { chapterProgress, onProgress } from "./progress.js";

const root = document.getElementById("chapter-root");
const slugs = root.dataset.slugs.split(" ").filter(Boolean);

function fit(frame) {
  const doc = frame.contentDocument;
  if (!doc || !doc.body) return;
  frame.style.height = `${Math.ceil(doc.body.getBoundingClientRect().height)}px`;
}

for (const frame of root.querySelectorAll(".embed iframe")) {
  frame.addEventListener("load", () => {
    fit(frame);
    // The observer is the frame's own, so that it watches the frame's document.
    new frame.contentWindow.ResizeObserver(() => fit(frame)).observe(frame.contentDocument.body);
  });
}

function questionIds() {
  return [...document.querySelectorAll("#quiz-root fieldset[data-question]")].map((f) => f.dataset.question);
}

function show() {
  const quizSize = Number(root.dataset.quiz);
  const p = chapterProgress(slugs, questionIds());
  const parts = [];
  if (slugs.length) parts.push(`${p.explored} of ${slugs.length} playgrounds explored`);
  if (quizSize) parts.push(`${p.right} of ${quizSize} questions answered right`);
  const done = p.explored === slugs.length && p.right === quizSize;
  root.querySelector(".progress-text").textContent = `${parts.join(" · ")}${done ? " · chapter done ✓" : ""}`;
  const total = slugs.length + quizSize;
  root.querySelector(".progress > div").style.width = `${total ? (100 * (p.explored + p.right)) / total : 0}%`;
  root.dataset.done = done ? "1" : "0";
  const seen = new Set(slugs.filter((s) => chapterProgress([s], []).explored));
  for (const figure of root.querySelectorAll(".embed[data-slug]")) {
    figure.querySelector(".explored-badge").hidden = !seen.has(figure.dataset.slug);
  }
}

onProgress(show);
// The quiz renders after its fetch; count its questions once they are on the page.
const quizRoot = document.getElementById("quiz-root");
if (quizRoot) new MutationObserver(show).observe(quizRoot, { childList: true });
show();
