// P22: render the cheat sheet rows the server computed.
import { getJson } from "./lab.js";

const table = document.getElementById("cheat-sheet");

function format(value) {
  if (Number.isInteger(value)) return value.toLocaleString("en-US");
  return Math.abs(value) >= 100 ? value.toLocaleString("en-US", { maximumFractionDigits: 0 })
    : value.toLocaleString("en-US", { maximumSignificantDigits: 4 });
}

async function init() {
  const rows = await getJson(table.dataset.apiUrl);
  const cell = (text) => { const td = document.createElement("td"); td.textContent = text; return td; };
  table.tBodies[0].replaceChildren(...rows.map((row) => {
    const tr = document.createElement("tr");
    const value = cell(`${format(row.value)} ${row.unit}`);
    value.className = "num";
    tr.append(cell(row.quantity), cell(row.formula), cell(row.example), value, cell(row.source));
    return tr;
  }));
  table.dataset.ready = "1";
}

init().catch((err) => {
  table.caption = table.createCaption();
  table.caption.textContent = `Could not load: ${err.message}`;
  table.dataset.ready = "1"; // settled, on its error
});
