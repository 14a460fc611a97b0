// @ts-check
// The controls: the toolbar, the list of objects and the keyboard. The worker says what they show (the
// state it sends with every frame); what they do goes back to it as commands.
import { VIEWS } from "../vendor/constants.js";
import { $ } from "./contract.js";
import { comboOf, GESTURES, keysOf, listed, SHORTCUTS, shortcutFor } from "./keys.js";
import { scheduleSave } from "./saves.js";
import { state } from "./state.js";
import { command, exportFile, send } from "./worker.js";

/** @typedef {import("./protocol.js").Controls} Controls */

/** @type {HTMLButtonElement} */
const undoButton = $("undo");
/** @type {HTMLButtonElement} */
const redoButton = $("redo");
/** @type {HTMLButtonElement} */
const clearButton = $("clear");
/** @type {HTMLButtonElement} */
const newObjectButton = $("new-object");
/** @type {HTMLInputElement} */
const opacityInput = $("opacity");
/** @type {HTMLInputElement} */
const fileInput = $("file-input");
/** @type {Record<"mask" | "cutout" | "coco", HTMLButtonElement>} */
const exportButtons = { mask: $("export-mask"), cutout: $("export-cutout"), coco: $("export-coco") };

/** Show what the worker says (null: no photo open). */
export function renderControls(/** @type {Controls | null} */ controls) {
  state.controls = controls;
  const open = controls?.open ? controls : null;
  const viewPending = [...state.unacked.values(), ...state.outbox].some((message) => message.type === "view");
  if (open && !viewPending) {
    // the worker's view, which a replay or a restore may have changed
    state.view = open.view;
    state.opacity = open.opacity;
    pressView(open.view);
    opacityInput.value = String(Math.round(open.opacity * 100));
  }
  if (open) scheduleSave(); // every change the worker applied ends in a frame with its state
  undoButton.disabled = !open?.can_undo;
  redoButton.disabled = !open?.can_redo;
  const current = open?.objects.find((o) => o.id === open.current);
  clearButton.disabled = !current || current.clicks === 0;
  newObjectButton.disabled = !open;
  exportButtons.mask.disabled = !current?.has_mask;
  exportButtons.cutout.disabled = !current?.has_mask;
  exportButtons.coco.disabled = !open?.objects.some((o) => o.has_mask);
  const candidateKeys = SHORTCUTS.find((row) => row.action === "candidate")?.keys ?? [];
  $("candidates").replaceChildren(
    ...(open?.candidates ?? []).map((score, index) => {
      const button = document.createElement("button");
      button.type = "button";
      button.id = `candidate-${index}`;
      button.textContent = `${index + 1}: ${score.toFixed(2)}`;
      const key = candidateKeys[index] ? ` (key ${candidateKeys[index]})` : "";
      button.title = `Candidate mask ${index + 1}, predicted IoU ${score.toFixed(3)}${key}`;
      button.setAttribute("aria-pressed", String(open.chosen === index));
      button.addEventListener("click", () => command({ type: "candidate", index }));
      return button;
    }),
  );
  $("object-list").replaceChildren(...(open?.objects ?? []).map((object) => objectItem(object, open)));
}

function objectItem(
  /** @type {import("./protocol.js").ObjectState} */ object,
  /** @type {import("./protocol.js").OpenControls} */ controls,
) {
  const item = document.createElement("li");
  item.dataset.id = String(object.id);
  item.setAttribute("aria-current", String(object.id === controls.current));
  const swatch = Object.assign(document.createElement("span"), { className: "swatch" });
  swatch.style.background = object.colour;
  const name = Object.assign(document.createElement("input"), { value: object.name, ariaLabel: "Object name" });
  name.addEventListener("focus", () => object.id !== controls.current && command({ type: "select", id: object.id }));
  name.addEventListener("change", () => command({ type: "rename", id: object.id, name: name.value }));
  name.addEventListener("keydown", (event) => {
    if (event.key === "Enter") name.blur();
    event.stopPropagation();
  });
  const count = Object.assign(document.createElement("span"), {
    className: "count",
    textContent: `${object.clicks} click${object.clicks === 1 ? "" : "s"}`,
  });
  const remove = Object.assign(document.createElement("button"), {
    type: "button",
    textContent: "×",
    title: `Delete ${object.name}`,
    ariaLabel: `Delete ${object.name}`,
  });
  remove.addEventListener("click", () => command({ type: "delete", id: object.id }));
  item.addEventListener("click", (event) => {
    if (event.target === item || event.target === swatch || event.target === count) {
      command({ type: "select", id: object.id });
    }
  });
  item.append(swatch, name, count, remove);
  return item;
}

function pressView(/** @type {string} */ view) {
  for (const name of VIEWS) $(`view-${name}`).setAttribute("aria-pressed", String(name === view));
}

function setView(/** @type {string} */ view) {
  state.view = view;
  pressView(view);
  command({ type: "view", view, opacity: state.opacity });
}

function setExcludeMode(/** @type {boolean} */ exclude) {
  state.excludeMode = exclude;
  $("mode-include").setAttribute("aria-pressed", String(!exclude));
  $("mode-exclude").setAttribute("aria-pressed", String(exclude));
}

/** The worker's frame again, with the page's view (after the worker went back to an earlier photo). */
export function requestRedraw() {
  send({ type: "view", view: state.view, opacity: state.opacity });
}

// --- buttons -------------------------------------------------------------------------------------------

$("mode-include").addEventListener("click", () => setExcludeMode(false));
$("mode-exclude").addEventListener("click", () => setExcludeMode(true));
for (const name of /** @type {const} */ (["undo", "redo", "clear", "new-object"])) {
  $(name).addEventListener("click", () => command({ type: name }));
}
for (const name of VIEWS) $(`view-${name}`).addEventListener("click", () => setView(name));
opacityInput.addEventListener("input", () => {
  state.opacity = Number(opacityInput.value) / 100;
  if (state.view === "overlay") command({ type: "view", view: state.view, opacity: state.opacity });
});
for (const [what, button] of Object.entries(exportButtons)) {
  button.addEventListener("click", () => exportFile(/** @type {"mask" | "cutout" | "coco"} */ (what)));
}
$("open-files").addEventListener("click", () => fileInput.click());

// --- the keyboard --------------------------------------------------------------------------------------

/** What a row of SHORTCUTS does, by its action; false: it does not apply now (the key does what it would). */
/** @type {Record<string, (key: string) => void | false>} */
const ACTIONS = {
  undo: () => command({ type: "undo" }),
  redo: () => command({ type: "redo" }),
  clear: () => command({ type: "clear" }),
  "new-object": () => command({ type: "new-object" }),
  include: () => setExcludeMode(false),
  exclude: () => setExcludeMode(true),
  candidate: (key) =>
    state.controls?.open && state.controls.candidates.length
      ? command({ type: "candidate", index: Number(key) - 1 })
      : false,
  "next-view": () => setView(VIEWS[(VIEWS.indexOf(state.view) + 1) % VIEWS.length]),
  "export-mask": () => !exportButtons.mask.disabled && exportFile("mask"),
  "export-cutout": () => !exportButtons.cutout.disabled && exportFile("cutout"),
  "export-coco": () => !exportButtons.coco.disabled && exportFile("coco"),
  open: () => fileInput.click(),
};
// A row without its action would be a key that does nothing: better the page does not start.
for (const row of SHORTCUTS) if (!ACTIONS[row.action]) throw new Error(`keys.js: no action "${row.action}"`);

document.addEventListener("keydown", (event) => {
  const target = event.target;
  if (target instanceof HTMLInputElement && target.type !== "checkbox" && target.type !== "range") return;
  const combo = comboOf(event);
  const shortcut = shortcutFor(combo);
  if (shortcut && ACTIONS[shortcut.action](combo) !== false) event.preventDefault();
});

// The help (the Keyboard panel) and the buttons' titles say the keys SHORTCUTS binds.
$("shortcuts").replaceChildren(
  ...[...GESTURES, ...SHORTCUTS].flatMap(({ keys, does }) => [
    Object.assign(document.createElement("dt"), { textContent: listed(keys) }),
    Object.assign(document.createElement("dd"), { textContent: does }),
  ]),
);
for (const element of document.querySelectorAll("[data-shortcut]")) {
  if (element instanceof HTMLElement) element.title += ` (${keysOf(element.dataset.shortcut)})`;
}
