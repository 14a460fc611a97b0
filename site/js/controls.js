// @ts-check
// The controls: the toolbar, the list of objects and the keyboard. The worker says what they show (the
// state it sends with every frame); what they do goes back to it as commands.
import { VIEWS } from "../vendor/constants.js";
import { zoomActual, zoomFit, zoomStep } from "./canvas.js";
import { stepPhoto, toggleDone } from "./collection.js";
import { $, clickHint, put, setStatus, updateState } from "./contract.js";
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
/** @type {Record<"mask" | "cutout" | "masks" | "coco" | "yolo", HTMLButtonElement>} */
const exportButtons = {
  mask: $("export-mask"),
  cutout: $("export-cutout"),
  masks: $("export-masks"),
  coco: $("export-coco"),
  yolo: $("export-yolo"),
};
const featherInput = /** @type {HTMLInputElement} */ ($("feather"));
const toleranceInput = /** @type {HTMLInputElement} */ ($("polygon-tolerance"));
/** The polygon tolerance the person set, in pixels (an unreadable entry: the default, 1). */
const tolerance = () => {
  const value = Number(toleranceInput.value);
  return Number.isFinite(value) && value >= 0 && value <= 20 ? value : 1;
};

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
    put(opacityInput, "value", String(Math.round(open.opacity * 100)));
  }
  if (open) scheduleSave(); // every change the worker applied ends in a frame with its state
  put(undoButton, "disabled", !open?.can_undo);
  put(redoButton, "disabled", !open?.can_redo);
  const current = open?.objects.find((o) => o.id === open.current);
  put(clearButton, "disabled", !current || current.clicks === 0);
  put(newObjectButton, "disabled", !open);
  put(everythingButton, "disabled", !open && !state.everything);
  put(subjectButton, "disabled", !open);
  put(brushButton, "disabled", !current?.has_mask && !state.brush.on);
  put(exportButtons.mask, "disabled", !current?.has_mask);
  put(exportButtons.cutout, "disabled", !current?.has_mask);
  put(exportButtons.coco, "disabled", !open?.objects.some((o) => o.has_mask));
  put(exportButtons.yolo, "disabled", exportButtons.coco.disabled);
  put(exportButtons.masks, "disabled", exportButtons.coco.disabled);
  renderCandidates(open);
  renderObjects(open);
}

// Every frame (each click, each hover preview) brings the controls' state. The lists are updated in place,
// and only what changed is written: a rebuilt name field lost what a person was typing in it (focusing
// another object's name selects it, and its frame arrived mid-word), and rebuilt lists were restyled, laid
// out and painted again while the next decode ran beside them on the same cores.

function putAttribute(/** @type {Element} */ element, /** @type {string} */ name, /** @type {string} */ value) {
  if (element.getAttribute(name) !== value) element.setAttribute(name, value);
}

/** Make `parent`'s children exactly `children`, in order, moving only what is out of place. */
function placeChildren(/** @type {Element} */ parent, /** @type {Element[]} */ children) {
  children.forEach((child, index) => {
    if (parent.children[index] !== child) parent.insertBefore(child, parent.children[index] ?? null);
  });
  while (parent.children.length > children.length) parent.lastElementChild?.remove();
}

const candidateList = $("candidates");
/** @type {HTMLButtonElement[]} */
const candidateButtons = [];

function renderCandidates(/** @type {import("./protocol.js").OpenControls | null} */ open) {
  const scores = open?.candidates ?? [];
  const keys = SHORTCUTS.find((row) => row.action === "candidate")?.keys ?? [];
  while (candidateButtons.length < scores.length) {
    const index = candidateButtons.length;
    const button = Object.assign(document.createElement("button"), { type: "button", id: `candidate-${index}` });
    button.addEventListener("click", () => command({ type: "candidate", index }));
    candidateButtons.push(button);
  }
  scores.forEach((score, index) => {
    const button = candidateButtons[index];
    const key = keys[index] ? ` (key ${keys[index]})` : "";
    put(button, "textContent", `${index + 1}: ${score.toFixed(2)}`);
    put(button, "title", `Candidate mask ${index + 1}, predicted IoU ${score.toFixed(3)}${key}`);
    putAttribute(button, "aria-pressed", String(open?.chosen === index));
  });
  placeChildren(candidateList, candidateButtons.slice(0, scores.length));
}

const objectList = $("object-list");
/** The list's rows by object id, with the colour and whether current as each last showed (handlers read them).
 * @type {Map<number, {item: HTMLLIElement, swatch: HTMLElement, name: HTMLInputElement, count: HTMLElement,
 *   label: HTMLSelectElement, remove: HTMLButtonElement, colour: string, current: boolean, classes: string}>} */
const objectRows = new Map();

function renderObjects(/** @type {import("./protocol.js").OpenControls | null} */ open) {
  const objects = open?.objects ?? [];
  const ids = new Set(objects.map((object) => object.id));
  for (const id of objectRows.keys()) if (!ids.has(id)) objectRows.delete(id);
  const items = objects.map((object) => {
    const row = objectRows.get(object.id) ?? objectRow(object.id);
    row.current = object.id === open?.current;
    putAttribute(row.item, "aria-current", String(row.current));
    if (row.colour !== object.colour) row.swatch.style.background = row.colour = object.colour;
    // Not while a person is typing a new name into it (it is sent when they finish).
    if (document.activeElement !== row.name) put(row.name, "value", object.name);
    put(row.count, "textContent", `${object.clicks} click${object.clicks === 1 ? "" : "s"}`);
    renderClass(row, object.label);
    put(row.remove, "title", `Delete ${object.name}`);
    putAttribute(row.remove, "aria-label", `Delete ${object.name}`);
    return row.item;
  });
  placeChildren(objectList, items);
}

function objectRow(/** @type {number} */ id) {
  const item = document.createElement("li");
  item.dataset.id = String(id);
  const swatch = Object.assign(document.createElement("span"), { className: "swatch" });
  const name = Object.assign(document.createElement("input"), { ariaLabel: "Object name" });
  const count = Object.assign(document.createElement("span"), { className: "count" });
  const remove = Object.assign(document.createElement("button"), { type: "button", textContent: "×" });
  const label = Object.assign(document.createElement("select"), {
    ariaLabel: "Class",
    className: "class",
    title: "Its class, used by the exports (Alt+1 to Alt+9: the list's first nine; Alt+0: no class)",
  });
  const row = { item, swatch, name, count, label, remove, colour: "", current: false, classes: "" };
  label.addEventListener("change", () => command({ type: "classify", id, label: label.value || null }));
  name.addEventListener("focus", () => !row.current && command({ type: "select", id }));
  name.addEventListener("change", () => command({ type: "rename", id, name: name.value }));
  name.addEventListener("keydown", (event) => {
    if (event.key === "Enter") name.blur();
    event.stopPropagation();
  });
  remove.addEventListener("click", () => command({ type: "delete", id }));
  item.addEventListener("click", (event) => {
    if (event.target === item || event.target === swatch || event.target === count) command({ type: "select", id });
  });
  item.append(swatch, name, count, remove, label);
  objectRows.set(id, row);
  return row;
}

/**
 * An object's class: a choice of the collection's classes (hidden when it has none). A class that is not in
 * the list (from a session of a list since changed) is shown as it is.
 * @param {{label: HTMLSelectElement, classes: string}} row
 * @param {string | null} value
 */
function renderClass(row, value) {
  const classes = state.collection?.classes ?? [];
  const wanted = [...classes, ...(value && !classes.includes(value) ? [value] : [])];
  const key = JSON.stringify(wanted);
  if (row.classes !== key) {
    row.classes = key;
    row.label.replaceChildren(
      Object.assign(document.createElement("option"), { value: "", textContent: "no class" }),
      ...wanted.map((name, index) =>
        Object.assign(document.createElement("option"), {
          value: name,
          textContent: index < 9 && index < classes.length ? `${index + 1} ${name}` : name,
        }),
      ),
    );
  }
  put(row.label, "hidden", wanted.length === 0);
  if (document.activeElement !== row.label) put(row.label, "value", value ?? "");
}

/** Alt+1..9: the current object gets the collection's class of that number; Alt+0: no class. */
function classifyCurrent(/** @type {string} */ key) {
  const open = state.controls?.open ? state.controls : null;
  const classes = state.collection?.classes ?? [];
  const number = Number(key.slice(-1));
  if (!open || open.current === null || (number > 0 && number > classes.length)) return false;
  command({ type: "classify", id: open.current, label: number ? classes[number - 1] : null });
}

function pressView(/** @type {string} */ view) {
  for (const name of VIEWS) putAttribute($(`view-${name}`), "aria-pressed", String(name === view));
}

/** The view as the page has it: which, the overlay's opacity, the cutout's soft edge. */
const viewMessage = () =>
  /** @type {import("./protocol.js").View} */ ({
    type: "view",
    view: state.view,
    opacity: state.opacity,
    feather: state.feather,
  });

function setView(/** @type {string} */ view) {
  state.view = view;
  pressView(view);
  command(viewMessage());
}

function setExcludeMode(/** @type {boolean} */ exclude) {
  state.excludeMode = exclude;
  $("mode-include").setAttribute("aria-pressed", String(!exclude));
  $("mode-exclude").setAttribute("aria-pressed", String(exclude));
}

/** The worker's frame again, with the page's view (after the worker went back to an earlier photo). */
export function requestRedraw() {
  send(viewMessage());
}

// --- segment everything --------------------------------------------------------------------------------

// The grid the page asks for: 16 x 16 points, one decode each (the decoders here take one prompt a run);
// ?everything=N asks for N x N (1 to 64: benchmarks).
const EVERYTHING_POINTS_PER_SIDE = Math.min(
  64,
  Math.max(1, Math.round(Number(new URLSearchParams(location.search).get("everything")) || 16)),
);
const everythingButton = $("everything");
const progressBar = /** @type {HTMLProgressElement} */ ($("progress"));
const subjectButton = $("subject");

// --- the brush ----------------------------------------------------------------------------------------

const brushButton = $("brush");
const brushRemove = $("brush-remove");
const brushSize = /** @type {HTMLInputElement} */ ($("brush-size"));
const brushHardness = /** @type {HTMLInputElement} */ ($("brush-hardness"));

/** Brush mode on or off: on, the pointer paints the current object's mask instead of clicking. */
function setBrush(/** @type {boolean} */ on) {
  const was = state.brush.on;
  state.brush.on = on;
  putAttribute(brushButton, "aria-pressed", String(on));
  $("canvas").style.cursor = on ? "none" : "";
  if (!on) $("brush-cursor").hidden = true;
  if (on)
    setStatus(
      "Brush: paint over the object to add to its mask",
      "ready",
      "Hold Alt (or press Removes) to take away; [ and ] change the size; B again goes back to clicking.",
    );
  else if (was && state.controls?.open)
    setStatus("Brush off: clicks add and remove points again", "ready", clickHint());
}

function setBrushSize(/** @type {number} */ radius) {
  state.brush.radius = Math.min(80, Math.max(2, Math.round(radius)));
  brushSize.value = String(state.brush.radius);
}

brushButton.addEventListener("click", () => setBrush(!state.brush.on));
brushRemove.addEventListener("click", () => {
  state.brush.remove = !state.brush.remove;
  putAttribute(brushRemove, "aria-pressed", String(state.brush.remove));
});
brushSize.addEventListener("input", () => setBrushSize(Number(brushSize.value)));
brushHardness.addEventListener("input", () => {
  state.brush.hardness = Number(brushHardness.value) / 100;
});

/** Remove background: the worker makes the main subject an object and shows it cut out. */
function removeBackground() {
  if (!state.controls?.open) return false;
  command({ type: "subject" });
}

/** Start segmenting the whole photo, or stop the run under way (nothing is added then). */
function toggleEverything() {
  if (state.everything) {
    send({ type: "everything-cancel" });
    return;
  }
  if (!state.controls?.open) return false;
  const total = EVERYTHING_POINTS_PER_SIDE ** 2;
  command({ type: "everything", points_per_side: EVERYTHING_POINTS_PER_SIDE });
  state.everything = { cmd: state.cmdSeq, done: 0, total, found: 0, perRun: 1 };
  showEverything();
}

/** The run's progress on the status line and the button (Stop while it runs). */
export function showEverything() {
  const run = state.everything;
  everythingButton.textContent = run ? "Stop" : "Everything";
  putAttribute(everythingButton, "aria-pressed", String(!!run));
  progressBar.hidden = !run;
  updateState();
  if (!run) return;
  progressBar.max = run.total;
  progressBar.value = run.done;
  const kept = `${run.found} candidate mask${run.found === 1 ? "" : "s"} kept so far`;
  setStatus(
    `Segmenting everything: ${run.done} of ${run.total} points, ${kept}`,
    "everything",
    `${run.perRun > 1 ? `${run.perRun} points per decoder run` : "One decoder run per point (this decoder takes no batch)"}. ` +
      "Stop (or A) cancels and adds nothing; clicks wait until it ends.",
  );
}

/** The run answered (applied: its masks are objects now; refused: stopped, nothing added). */
export function endEverything(/** @type {number} */ cmd) {
  if (state.everything?.cmd !== cmd) return;
  state.everything = null;
  showEverything();
}

// --- buttons -------------------------------------------------------------------------------------------

$("mode-include").addEventListener("click", () => setExcludeMode(false));
$("mode-exclude").addEventListener("click", () => setExcludeMode(true));
for (const name of /** @type {const} */ (["undo", "redo", "clear", "new-object"])) {
  $(name).addEventListener("click", () => command({ type: name }));
}
for (const name of VIEWS) $(`view-${name}`).addEventListener("click", () => setView(name));
everythingButton.addEventListener("click", () => toggleEverything());
subjectButton.addEventListener("click", () => removeBackground());
opacityInput.addEventListener("input", () => {
  state.opacity = Number(opacityInput.value) / 100;
  if (state.view === "overlay") command(viewMessage());
});
featherInput.addEventListener("input", () => {
  state.feather = Number(featherInput.value);
  command(viewMessage()); // the cutout PNG has it too, whichever view shows
});
for (const [what, button] of Object.entries(exportButtons)) {
  button.addEventListener("click", () =>
    exportFile(/** @type {"mask" | "cutout" | "masks" | "coco" | "yolo"} */ (what), tolerance()),
  );
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
  everything: () => toggleEverything(),
  subject: () => removeBackground(),
  brush: () => (brushButton.disabled ? false : setBrush(!state.brush.on)),
  "zoom-fit": () => zoomFit(),
  "zoom-actual": () => zoomActual(),
  "zoom-step": (key) => zoomStep(key === "+" ? 2 : 0.5),
  "brush-size": (key) => setBrushSize(state.brush.radius * (key === "]" ? 1.25 : 0.8)),
  "export-mask": () => !exportButtons.mask.disabled && exportFile("mask"),
  "export-cutout": () => !exportButtons.cutout.disabled && exportFile("cutout"),
  "export-coco": () => !exportButtons.coco.disabled && exportFile("coco", tolerance()),
  "export-yolo": () => !exportButtons.yolo.disabled && exportFile("yolo", tolerance()),
  open: () => fileInput.click(),
  "collection-step": (key) => stepPhoto(key === "," ? -1 : 1),
  "photo-done": () => toggleDone(),
  classify: (key) => classifyCurrent(key),
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
