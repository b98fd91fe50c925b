// P21 and each chapter page: the quizzes. Answers are checked against the JSON the server sent
// and kept in this browser (progress.js), so they survive reloads. On the P21 page ?chapter=N
// focuses a chapter; on a chapter page (data-chapter on the root) only its quiz is shown.
import { getJson, readQuery, writeQuery } from "./lab.js";
import { answers as load, forgetAnswers, saveAnswer } from "./progress.js";

const root = document.getElementById("quiz-root");
let quizzes = [];

function escape(text) {
  const div = document.createElement("div");
  div.textContent = text;
  return div.innerHTML;
}

function feedback(question, answer) {
  const choice = answer && question.choices.find((c) => c.text === answer.text);
  if (!choice) return "";
  let html = `<p class="quiz-feedback ${choice.correct ? "right" : "wrong"}" data-correct="${choice.correct}">
    <strong>${choice.correct ? "Right." : "Not quite."}</strong> ${escape(choice.why)}</p>`;
  if (!choice.correct) {
    const right = question.choices.find((c) => c.correct);
    html += `<p class="quiz-feedback right">The answer: ${escape(right.text)}. ${escape(right.why)}</p>`;
  }
  if (question.misconception) {
    html += `<aside class="note">Misconception: “${escape(question.misconception)}”</aside>`;
  }
  return html;
}

function render() {
  const answers = load();
  root.innerHTML = quizzes.map((quiz) => `<section class="card quiz-chapter" id="chapter-${quiz.chapter}">
    <h2>Chapter ${quiz.chapter}: ${escape(quiz.title)}</h2>
    ${quiz.questions.map((q) => `<fieldset class="quiz-question" data-question="${q.id}">
      <legend>${escape(q.prompt)}</legend>
      ${q.choices.map((c, i) => `<label><input type="radio" name="${q.id}" value="${i}"
        ${answers[q.id]?.text === c.text ? "checked" : ""}> <span>${escape(c.text)}</span></label>`).join("")}
      <div class="quiz-answer">${feedback(q, answers[q.id])}</div>
    </fieldset>`).join("")}
  </section>`).join("");
  showProgress(answers);
}

function showProgress(answers) {
  document.getElementById("quiz-progress").innerHTML = quizzes.map((quiz) => {
    const answered = quiz.questions.filter((q) => answers[q.id] !== undefined);
    const right = answered.filter((q) => q.choices.find((c) => c.text === answers[q.id].text)?.correct);
    return `<li><a href="?chapter=${quiz.chapter}" data-chapter="${quiz.chapter}">Chapter ${quiz.chapter}</a>:
      ${right.length} right of ${quiz.questions.length}${answered.length < quiz.questions.length ? ` (${quiz.questions.length - answered.length} to go)` : ""}</li>`;
  }).join("");
}

function focusChapter(number, scroll) {
  document.querySelectorAll(".quiz-chapter").forEach((el) => el.classList.toggle("focus", el.id === `chapter-${number}`));
  const target = document.getElementById(`chapter-${number}`);
  if (target && scroll) target.scrollIntoView({ block: "start" });
}

root.addEventListener("change", (event) => {
  const input = event.target.closest("input[type=radio]");
  if (!input) return;
  const fieldset = input.closest("fieldset");
  const question = quizzes.flatMap((q) => q.questions).find((q) => q.id === fieldset.dataset.question);
  const choice = question.choices[Number(input.value)];
  saveAnswer(question.id, choice.text, choice.correct);
  const answers = load();
  fieldset.querySelector(".quiz-answer").innerHTML = feedback(question, answers[question.id]);
  showProgress(answers);
});

document.getElementById("quiz-progress").addEventListener("click", (event) => {
  const link = event.target.closest("a[data-chapter]");
  if (!link) return;
  event.preventDefault();
  writeQuery(`chapter=${link.dataset.chapter}`);
  focusChapter(link.dataset.chapter, true);
});

document.getElementById("quiz-reset").addEventListener("click", () => {
  forgetAnswers(quizzes.flatMap((quiz) => quiz.questions.map((q) => q.id)));
  render();
});

async function init() {
  quizzes = await getJson(root.dataset.apiUrl);
  if (root.dataset.chapter) quizzes = quizzes.filter((q) => String(q.chapter) === root.dataset.chapter);
  render();
  const chapter = readQuery().get("chapter");
  if (chapter) focusChapter(chapter, true);
  root.dataset.ready = "1";
}

init().catch((err) => {
  root.textContent = `Could not load the quizzes: ${err.message}`;
  root.dataset.ready = "1"; // settled, on its error
});
