// The chapter list shows the visitor's standing in each chapter and where to continue.
import { chapterProgress, explored, onProgress } from "./progress.js";

const split = (text) => text.split(" ").filter(Boolean);

function show() {
  const seen = explored();
  let started = false;
  let next = null;
  for (const item of document.querySelectorAll("#chapter-list > li[data-chapter]")) {
    const p = chapterProgress(split(item.dataset.slugs), split(item.dataset.quiz));
    const standing = item.querySelector(".chapter-standing");
    const any = p.explored + p.right > 0;
    started ||= any;
    standing.hidden = !any;
    standing.textContent = `${p.explored} of ${p.playgrounds} playgrounds explored · ${p.right} of ${p.questions} quiz questions right`;
    item.querySelector(".chapter-done").hidden = !p.done;
    if (!p.done && !next) next = item;
    for (const pg of item.querySelectorAll("li[data-slug]")) {
      pg.querySelector(".explored-badge").hidden = !seen[pg.dataset.slug];
    }
  }
  const resume = document.getElementById("resume");
  resume.hidden = !started || !next;
  if (next) {
    const link = resume.querySelector("a");
    link.href = next.querySelector("h2 a").getAttribute("href");
    link.textContent = `Continue with chapter ${next.dataset.chapter}`;
  }
}

onProgress(show);
show();
