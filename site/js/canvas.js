// @ts-check
// The canvas: what is painted on it (a placeholder, a photo before Python is ready, the worker's frames) and
// what the pointer does on it (clicks, boxes, long presses, hover previews).
import { MAX_VIEW_EDGE } from "../vendor/constants.js";
import { $ } from "./contract.js";
import { state } from "./state.js";
import { canSend, command, send } from "./worker.js";

/** @typedef {import("./protocol.js").Click} Click */

const DRAG_THRESHOLD_PX = 6;
const LONG_PRESS_MS = 550;
// The pointer counts as resting once it has been still this long: the worker then decodes what a click there
// would make, so that the click, when it comes, is already answered. Shorter would start decodes for a
// pointer only slowing down on its way (a WASM run cannot be stopped); much longer would start too late.
const REST_MS = 60;

/** @type {HTMLCanvasElement} */
const canvas = $("canvas");
const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
const imageArea = $("image-area");
const boxRect = $("box-rect");
/** @type {HTMLInputElement} */
const hoverPreview = $("hover-preview");

// --- painting ------------------------------------------------------------------------------------------

export function paintPlaceholder(/** @type {string} */ text) {
  const { width, height } = canvas;
  const dark = matchMedia("(prefers-color-scheme: dark)").matches;
  ctx.fillStyle = dark ? "#262624" : "#ececea";
  ctx.fillRect(0, 0, width, height);
  ctx.fillStyle = dark ? "#8a8a84" : "#77776f";
  ctx.font = "26px system-ui, sans-serif";
  ctx.textAlign = "center";
  ctx.fillText(text, width / 2, height / 2);
}

// The size of the pixels the worker composites (pyapp.app.view_size): the photo painted before Python is
// ready has the same, so the first frame replaces it without a jump.
function viewSize(/** @type {number} */ width, /** @type {number} */ height) {
  const scale = Math.min(1, MAX_VIEW_EDGE / Math.max(width, height));
  return [Math.max(1, Math.round(width * scale)), Math.max(1, Math.round(height * scale))];
}

/**
 * The photo appears as soon as its image has loaded, before Python is ready.
 * @param {string | Blob} source  a URL, or the photo's bytes
 * @param {number} width  the photo's size, if known (else the image's)
 * @param {number} height
 * @param {() => boolean} stillWanted
 * @returns {Promise<{width: number, height: number} | null>} null if another photo was chosen meanwhile
 */
export async function paintPhoto(source, width, height, stillWanted = () => true) {
  const bitmap = source instanceof Blob ? await createImageBitmap(source) : await loadImage(source);
  if (!stillWanted()) return null; // another photo was chosen while this one loaded
  const [w, h] = viewSize(width || bitmap.width, height || bitmap.height);
  canvas.width = w;
  canvas.height = h;
  fitCanvas();
  ctx.drawImage(bitmap, 0, 0, w, h);
  await new Promise((resolve) => requestAnimationFrame(resolve));
  return { width: width || bitmap.width, height: height || bitmap.height };
}

// The canvas's CSS size: the photo as large as the image area allows, aspect kept. Clicks are mapped
// from this CSS box (pyapp.coords), so any CSS scale and any device pixel ratio put masks under the cursor.
function fitCanvas() {
  const style = getComputedStyle(imageArea);
  const width = imageArea.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  const top = imageArea.getBoundingClientRect().top;
  const height = Math.max(200, innerHeight - Math.max(0, top) - 24);
  const scale = Math.min(width / canvas.width, height / canvas.height);
  canvas.style.width = `${Math.floor(canvas.width * scale)}px`;
  canvas.style.height = `${Math.floor(canvas.height * scale)}px`;
}
let areaWidth = 0;
new ResizeObserver(([entry]) => {
  // Only a change of width matters (the area's height follows the canvas: refitting on it would loop).
  if (Math.abs(entry.contentRect.width - areaWidth) < 1) return;
  areaWidth = entry.contentRect.width;
  requestAnimationFrame(fitCanvas); // after this layout, not inside it
}).observe(imageArea);
addEventListener("resize", fitCanvas);

function loadImage(/** @type {string} */ url) {
  return /** @type {Promise<HTMLImageElement>} */ (
    new Promise((resolve, reject) => {
      const image = new Image();
      image.onload = () => resolve(image);
      image.onerror = () => reject(new Error(`the photo ${url} could not be loaded`));
      image.src = url;
    })
  );
}

/** A frame from the worker: RGBA pixels at the view's size. */
export function paintFrame(/** @type {{width: number, height: number, pixels: ArrayBuffer}} */ frame) {
  const { width, height, pixels } = frame;
  if (canvas.width !== width || canvas.height !== height) {
    canvas.width = width;
    canvas.height = height;
    fitCanvas();
  }
  ctx.putImageData(new ImageData(new Uint8ClampedArray(pixels), width, height), 0, 0);
}

// --- pointer input -------------------------------------------------------------------------------------

/** @typedef {{x: number, y: number, w: number, h: number}} CssPoint  a point and the canvas's size, in CSS pixels */

function cssPoint(/** @type {PointerEvent} */ event) {
  const rect = canvas.getBoundingClientRect();
  return { x: event.clientX - rect.left, y: event.clientY - rect.top, w: rect.width, h: rect.height };
}

/**
 * A button or a finger down on the canvas, until it is lifted.
 * @type {{start: CssPoint, pointerId: number, button: number, moved: boolean, longPress: boolean,
 *   photo: import("./state.js").Photo | null, timer?: ReturnType<typeof setTimeout>} | null}
 */
let press = null;
/** @type {ReturnType<typeof setTimeout> | undefined} */
let restTimer;

/** @returns {Click} */
function clickMessage(/** @type {CssPoint} */ point, /** @type {boolean} */ include) {
  return {
    type: "click",
    x: point.x,
    y: point.y,
    css_width: point.w,
    css_height: point.h,
    include,
    t0: performance.now(),
  };
}

function showBox(/** @type {CssPoint} */ a, /** @type {CssPoint} */ b) {
  const rect = canvas.getBoundingClientRect();
  const area = imageArea.getBoundingClientRect();
  boxRect.hidden = false;
  Object.assign(boxRect.style, {
    left: `${rect.left - area.left + Math.min(a.x, b.x)}px`,
    top: `${rect.top - area.top + Math.min(a.y, b.y)}px`,
    width: `${Math.abs(b.x - a.x)}px`,
    height: `${Math.abs(b.y - a.y)}px`,
  });
}

canvas.addEventListener("contextmenu", (event) => event.preventDefault());

canvas.addEventListener("pointerdown", (event) => {
  clearTimeout(restTimer);
  if (!state.photo || (event.button !== 0 && event.button !== 2)) return;
  canvas.setPointerCapture(event.pointerId);
  press = {
    start: cssPoint(event),
    pointerId: event.pointerId,
    button: event.button,
    moved: false,
    longPress: false,
    photo: state.shown,
  };
  if (event.pointerType === "touch") {
    press.timer = setTimeout(() => {
      if (press && !press.moved && press.photo === state.photo && state.shown === state.photo) {
        press.longPress = true;
        command(clickMessage(press.start, false)); // a long press excludes
      }
    }, LONG_PRESS_MS);
  }
});

canvas.addEventListener("pointermove", (event) => {
  const point = cssPoint(event);
  if (press && press.pointerId === event.pointerId) {
    if (Math.hypot(point.x - press.start.x, point.y - press.start.y) > DRAG_THRESHOLD_PX) press.moved = true;
    if (press.moved) showBox(press.start, point);
    return;
  }
  // The pointer rests: the worker decodes what a click here would make (shown before the object's first
  // click, the hover preview; after it, kept for the click). Nothing is sent while the pointer moves.
  clearTimeout(restTimer);
  if (!hoverPreview.checked || event.pointerType !== "mouse" || !state.opened) return;
  restTimer = setTimeout(() => {
    if (press || !canSend()) return;
    const include = !state.excludeMode;
    send({ type: "hover", x: point.x, y: point.y, css_width: point.w, css_height: point.h, include });
  }, REST_MS);
});

canvas.addEventListener("pointerleave", () => {
  clearTimeout(restTimer);
  if (canSend() && hoverPreview.checked) send({ type: "hover-end" });
});

hoverPreview.addEventListener("change", () => {
  clearTimeout(restTimer);
  if (!hoverPreview.checked && state.opened) send({ type: "hover-end" });
});

canvas.addEventListener("pointerup", (event) => {
  if (!press || press.pointerId !== event.pointerId) return;
  clearTimeout(press.timer);
  const end = cssPoint(event);
  const { start, moved, button, longPress, photo: pressedOn } = press;
  press = null;
  boxRect.hidden = true;
  if (longPress) return;
  // A click lands on the photo that was on the canvas when the button went down, or nowhere: not on a
  // photo chosen meanwhile whose pixels are not showing yet.
  if (pressedOn !== state.photo || state.shown !== state.photo) return;
  if (moved) {
    const clamp = (/** @type {number} */ v, /** @type {number} */ max) => Math.min(Math.max(v, 0), max - 0.01);
    command({
      type: "box",
      x0: clamp(start.x, start.w),
      y0: clamp(start.y, start.h),
      x1: clamp(end.x, end.w),
      y1: clamp(end.y, end.h),
      css_width: start.w,
      css_height: start.h,
      t0: performance.now(),
    });
  } else {
    command(clickMessage(start, button === 0 && !state.excludeMode));
  }
});

canvas.addEventListener("pointercancel", () => {
  if (press) clearTimeout(press.timer);
  press = null;
  boxRect.hidden = true;
});
