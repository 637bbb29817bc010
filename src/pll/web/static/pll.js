// PLL's own script: small enhancements; every page works without it.
"use strict";

// The dosage editor (pll.web.dosage_editor): show the fields of the chosen mode, a live
// preview of the text the list will show, written by the server (the same code that writes
// it on save), the units of the drug chosen, and tapering steps added and removed. The server
// decides everything again on save; fields of other modes are still sent, and a value typed
// there is refused by name rather than dropped.
function dosageEditor(editor) {
  const form = editor.closest("form");
  const output = editor.querySelector("output");
  const modes = editor.querySelectorAll('input[name="dose-mode"]');
  let timer = null;
  function mode() {
    const checked = editor.querySelector('input[name="dose-mode"]:checked');
    editor.dataset.mode = checked ? checked.value : "fixed";
  }
  async function preview() {
    const params = new URLSearchParams();
    editor.querySelectorAll("input, select").forEach((el) => {
      const ticked = el.type === "radio" || el.type === "checkbox";
      if (el.name && (!ticked || el.checked)) params.set(el.name, el.value);
    });
    const answer = await fetch(editor.dataset.preview + "?" + params.toString(), {
      credentials: "same-origin",
    });
    const said = await answer.json();
    output.textContent = said.text;
    output.classList.toggle("invalid", !said.ok);
    offerToClear(said.ok ? null : said.field);
  }
  // A value left in another (hidden) mode's fields would be lost, so the server refuses it;
  // the doctor can clear that mode's fields here without going back to it.
  const clear = editor.querySelector("button.clear-mode");
  let leftover = null;
  function offerToClear(field) {
    const el = field ? editor.querySelector("#" + CSS.escape(field)) : null;
    leftover = el ? el.closest('[class^="mode-"]') : null;
    if (leftover && leftover.offsetParent !== null) leftover = null;  // shown: fix it there
    clear.hidden = !leftover;
    if (leftover) {
      const title = leftover.querySelector(".mode-title");
      clear.textContent = "Tøm feltene under «" + (title ? title.textContent : "") + "»";
    }
  }
  if (clear) {
    clear.addEventListener("click", () => {
      if (!leftover) return;
      leftover.querySelectorAll("input").forEach((el) => {
        if (el.type === "checkbox") el.checked = false;
        else if (el.name !== "dose-int-every") el.value = "";
      });
      later();
    });
  }
  function later() {
    clearTimeout(timer);
    timer = setTimeout(() => preview().catch(() => {}), 150);
  }
  modes.forEach((m) => m.addEventListener("change", () => { mode(); later(); }));
  editor.addEventListener("input", later);
  editor.addEventListener("change", later);
  units(editor, form, later);
  steps(editor, later);
  mode();
  if (form) later();
}

// Only the units the chosen drug's form takes (the server refuses any other).
function units(editor, form, changed) {
  if (!form || !editor.dataset.units) return;
  const perDrug = JSON.parse(editor.dataset.units);
  const select = editor.querySelector('select[name="dose-unit"]');
  function offer() {
    const drug = form.querySelector('input[name="drug"]:checked');
    const wanted = drug && perDrug[drug.value];
    if (!wanted) return;
    const was = select.value;
    select.replaceChildren(...wanted.map((u) => new Option(u, u)));
    select.value = wanted.includes(was) && select.dataset.chosen ? was : wanted[0];
    changed();
  }
  select.addEventListener("change", () => { select.dataset.chosen = "1"; });
  form.querySelectorAll('input[name="drug"]').forEach((r) => r.addEventListener("change", offer));
  offer();
}

// Tapering: the filled steps and one more are shown; "Legg til trinn" shows the next,
// "Fjern" takes a step out and moves the later ones up.
function steps(editor, changed) {
  const rows = Array.from(editor.querySelectorAll("tr.step"));
  const add = editor.querySelector("button.add-step");
  if (!rows.length || !add) return;
  const inputs = (row) => Array.from(row.querySelectorAll("input, select"));
  const filled = (row) => row.querySelectorAll("input").length &&
    Array.from(row.querySelectorAll("input")).some((i) => i.value.trim() !== "");
  let shown = Math.max(2, rows.reduce((n, row, i) => (filled(row) ? i + 1 : n), 0));
  function show() {
    rows.forEach((row, i) => { row.hidden = i >= shown; });
    add.hidden = shown >= rows.length;
  }
  add.addEventListener("click", () => { shown += 1; show(); rows[shown - 1].querySelector("input").focus(); });
  rows.forEach((row, i) => {
    const remove = row.querySelector("button.remove-step");
    remove.hidden = false;
    remove.addEventListener("click", () => {
      for (let k = i; k < rows.length; k += 1) {
        const next = rows[k + 1] ? inputs(rows[k + 1]).map((el) => el.value) : null;
        inputs(rows[k]).forEach((el, j) => {
          el.value = next ? next[j] : (el.tagName === "SELECT" ? el.options[0].value : "");
        });
      }
      shown = Math.max(1, shown - 1);
      show();
      changed();
    });
  });
  show();
}

document.querySelectorAll(".dosage-editor").forEach(dosageEditor);

// A refused form: the focus goes to the first field the server refused (its message is
// beside it, and the summary at the top lists them all).
const refused = document.querySelector('[aria-invalid="true"]') ||
  document.querySelector(".error-summary");
if (refused) refused.focus();

// The printable chart (/kurve/<patient>/utskrift): a button that opens the print dialog.
document.querySelectorAll("[data-print]").forEach((button) => {
  button.addEventListener("click", () => window.print());
});
