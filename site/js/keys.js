// @ts-check
// The keyboard shortcuts: one table, the single source of the page's key handling (controls.js binds each
// row's action), of the help shown in the page, of the buttons' titles and of the README's Keyboard line
// (tests/unit/test_shortcuts.py reads this module with node: no key may be bound twice, and the README
// must list what this table lists). No imports and no DOM at import time, so that node can read it.

/**
 * @typedef {object} Shortcut
 * @property {string[]} keys  as comboOf() names a key press: "Ctrl+Shift+Z", "Esc", "N", "1"
 * @property {string} does  what it does, for the help
 * @property {string} action  what controls.js does (a key's row and the button of the same action share it)
 */

/** @type {readonly Shortcut[]} */
export const SHORTCUTS = Object.freeze([
  { keys: ["Ctrl+Z"], does: "undo", action: "undo" },
  { keys: ["Ctrl+Shift+Z", "Ctrl+Y"], does: "redo", action: "redo" },
  { keys: ["Esc"], does: "clear this object", action: "clear" },
  { keys: ["N"], does: "new object", action: "new-object" },
  { keys: ["I"], does: "include mode", action: "include" },
  { keys: ["X"], does: "exclude mode", action: "exclude" },
  { keys: ["1", "2", "3"], does: "choose a candidate mask", action: "candidate" },
  { keys: ["V"], does: "next view", action: "next-view" },
  { keys: ["A"], does: "segment everything (again: stop)", action: "everything" },
  { keys: ["R"], does: "remove background (the main subject, cut out)", action: "subject" },
  { keys: ["B"], does: "brush mode (hold Alt: the brush removes)", action: "brush" },
  { keys: ["[", "]"], does: "brush size", action: "brush-size" },
  { keys: ["F"], does: "fit the photo (after zooming with the wheel)", action: "zoom-fit" },
  { keys: ["H"], does: "zoom to 100 % (a photo pixel a screen pixel)", action: "zoom-actual" },
  { keys: ["+", "-"], does: "zoom in, out (twice, half)", action: "zoom-step" },
  { keys: ["M"], does: "export the mask PNG", action: "export-mask" },
  { keys: ["C"], does: "export the cutout PNG", action: "export-cutout" },
  { keys: ["J"], does: "export COCO JSON", action: "export-coco" },
  { keys: ["Y"], does: "export YOLO labels", action: "export-yolo" },
  { keys: ["O"], does: "open your own photo", action: "open" },
  { keys: [",", "."], does: "previous, next photo of the collection", action: "collection-step" },
  { keys: ["D"], does: "mark this photo of the collection done (again: not done)", action: "photo-done" },
  {
    keys: ["Alt+1", "Alt+2", "Alt+3", "Alt+4", "Alt+5", "Alt+6", "Alt+7", "Alt+8", "Alt+9", "Alt+0"],
    does: "give this object the collection's class 1 to 9 (0: no class)",
    action: "classify",
  },
]);

/** What the pointer does, shown in the help before the keys. */
export const GESTURES = Object.freeze([
  { keys: ["Left click / Right click"], does: "include / exclude a point" },
  { keys: ["Drag"], does: "draw a box" },
  { keys: ["Wheel / Middle drag or Space + drag"], does: "zoom around the pointer / pan" },
  { keys: ["Long press (touch)"], does: "exclude a point" },
]);

/**
 * A key press by the name SHORTCUTS gives it, or null if no shortcut can be it. Ctrl and ⌘ are one;
 * Shift counts only with them (Shift+N is N, as with Caps Lock); Alt without them makes a shortcut only with
 * a digit, known by the key's place (`code`) where the browser gives it: a Mac's Option+1 types "¡".
 * @param {{key: string, code?: string, ctrlKey: boolean, metaKey: boolean, shiftKey: boolean, altKey: boolean}} event
 */
export function comboOf({ key, code, ctrlKey, metaKey, shiftKey, altKey }) {
  const name = key === "Escape" ? "Esc" : key.length === 1 ? key.toUpperCase() : key;
  if (ctrlKey || metaKey) return `Ctrl+${shiftKey ? "Shift+" : ""}${name}`;
  if (!altKey) return name;
  const digit = /^Digit(\d)$/.exec(code ?? "")?.[1] ?? (/^\d$/.test(key) ? key : null);
  return digit === null ? null : `Alt+${digit}`;
}

const BY_COMBO = new Map(SHORTCUTS.flatMap((row) => row.keys.map((key) => [key, row])));

/** The shortcut a key press makes, if any. */
export const shortcutFor = (/** @type {string | null} */ combo) => BY_COMBO.get(combo ?? "") ?? null;

/** "A", "A or B", "A, B or C": how the help and the README list a row's keys. */
export function listed(/** @type {readonly string[]} */ keys) {
  return keys.length < 2 ? keys.join("") : `${keys.slice(0, -1).join(", ")} or ${keys.at(-1)}`;
}

/** The keys of an action, as the page's hints and titles name them. */
export function keysOf(/** @type {string} */ action) {
  return listed(SHORTCUTS.find((row) => row.action === action)?.keys ?? []);
}
