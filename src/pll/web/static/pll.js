// PLL's own script: small enhancements; every page works without it.
"use strict";

// The dosage editor: show the fields of the chosen mode and a live preview of the text the
// list will show, written by the server (the same code that writes it on save).
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
      if (el.name && (el.type !== "radio" || el.checked)) params.set(el.name, el.value);
    });
    const answer = await fetch(editor.dataset.preview + "?" + params.toString(), {
      credentials: "same-origin",
    });
    const said = await answer.json();
    output.textContent = said.text;
    output.classList.toggle("invalid", !said.ok);
  }
  function later() {
    clearTimeout(timer);
    timer = setTimeout(() => preview().catch(() => {}), 150);
  }
  modes.forEach((m) => m.addEventListener("change", () => { mode(); later(); }));
  editor.addEventListener("input", later);
  mode();
  if (form) later();
}

document.querySelectorAll(".dosage-editor").forEach(dosageEditor);

// A refused form: the focus goes to the first field the server refused (its message is
// beside it, and the summary at the top lists them all).
const refused = document.querySelector('[aria-invalid="true"]') ||
  document.querySelector(".error-summary");
if (refused) refused.focus();
