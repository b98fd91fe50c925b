// A playground counts as explored once the visitor moves one of its controls (many are built
// after the page's data arrives, so the listener waits on the whole page); a page without
// controls says so with data-explored-on-view (the cheat sheet) and counts once it is opened.
import { markExplored } from "./progress.js";

const slug = document.getElementById("progress-script").dataset.slug;
const main = document.querySelector("main");
const CONTROLS = "input, select, button, textarea";
const EVENTS = ["input", "change", "click"];
const own = (el) => !el.closest("#lesson-link");

function onUse(event) {
  const control = event.target.closest(CONTROLS);
  if (!control || !own(control)) return;
  markExplored(slug);
  for (const type of EVENTS) main.removeEventListener(type, onUse, true);
}

if (main.querySelector("[data-explored-on-view]")) {
  markExplored(slug);
} else {
  for (const type of EVENTS) main.addEventListener(type, onUse, true);
}
