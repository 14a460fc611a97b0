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
  if (event.button === 1 || (spaceHeld && event.button === 0)) {
    startPan(event);
    return;
  }
  if (state.brush.on) {
    startStroke(event);
    return;
  }
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
  if (pan) {
    movePan(event);
    return;
  }
  if (state.brush.on) {
    moveBrush(event);
    return;
  }
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
  brushCursor.hidden = true;
  clearTimeout(restTimer);
  if (canSend() && hoverPreview.checked) send({ type: "hover-end" });
});

hoverPreview.addEventListener("change", () => {
  clearTimeout(restTimer);
  if (!hoverPreview.checked && state.opened) send({ type: "hover-end" });
});

canvas.addEventListener("pointerup", (event) => {
  if (pan) {
    pan = null;
    return;
  }
  if (stroke) {
    endStroke(event);
    return;
  }
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
  stroke = null;
  clearBrushLayer();
  if (press) clearTimeout(press.timer);
  press = null;
  boxRect.hidden = true;
});

// --- the brush (issue 16) ------------------------------------------------------------------------------
// A stroke is drawn on a layer over the photo as the pointer moves (every coalesced position: no gaps at any
// speed) and sent to the worker once, when the button or finger lifts: its path and radius in CSS pixels. The
// worker paints it on the current object (pyapp.brush) and its frame replaces the layer's drawing.

/** @type {HTMLCanvasElement} */
const brushLayer = $("brush-layer");
const brushCtx = /** @type {CanvasRenderingContext2D} */ (brushLayer.getContext("2d"));
const brushCursor = $("brush-cursor");

/** @type {{pointerId: number, points: number[][], w: number, h: number, add: boolean} | null} */
let stroke = null;

/** The layer over the canvas, at the canvas's place and size (and the screen's pixel ratio). */
function placeBrushLayer() {
  const rect = canvas.getBoundingClientRect();
  const area = imageArea.getBoundingClientRect();
  const ratio = devicePixelRatio || 1;
  Object.assign(brushLayer.style, {
    left: `${rect.left - area.left}px`,
    top: `${rect.top - area.top}px`,
    width: `${rect.width}px`,
    height: `${rect.height}px`,
  });
  brushLayer.width = Math.round(rect.width * ratio);
  brushLayer.height = Math.round(rect.height * ratio);
  brushCtx.setTransform(ratio, 0, 0, ratio, 0, 0);
}

export function clearBrushLayer() {
  brushCtx.clearRect(0, 0, brushLayer.width, brushLayer.height);
}

function startStroke(/** @type {PointerEvent} */ event) {
  if (!state.controls?.open || state.shown !== state.photo || (event.button !== 0 && event.pointerType === "mouse")) {
    return;
  }
  canvas.setPointerCapture(event.pointerId);
  placeBrushLayer();
  const point = cssPoint(event);
  stroke = {
    pointerId: event.pointerId,
    points: [[point.x, point.y]],
    w: point.w,
    h: point.h,
    add: state.brush.remove === event.altKey, // Alt turns the brush around
  };
  drawStroke();
}

/** The stroke so far, drawn whole (one path: an even tint where its segments overlap). */
function drawStroke() {
  if (!stroke) return;
  clearBrushLayer();
  brushCtx.lineCap = "round";
  brushCtx.lineJoin = "round";
  brushCtx.lineWidth = 2 * state.brush.radius;
  brushCtx.strokeStyle = stroke.add ? "rgb(37 99 235 / 0.45)" : "rgb(255 255 255 / 0.6)";
  brushCtx.beginPath();
  const [first, ...rest] = stroke.points;
  brushCtx.moveTo(first[0], first[1]);
  for (const [x, y] of rest.length ? rest : [first]) brushCtx.lineTo(x, y);
  brushCtx.stroke();
}

function moveBrush(/** @type {PointerEvent} */ event) {
  const point = cssPoint(event);
  const area = imageArea.getBoundingClientRect();
  const rect = canvas.getBoundingClientRect();
  brushCursor.hidden = false;
  Object.assign(brushCursor.style, {
    left: `${rect.left - area.left + point.x}px`,
    top: `${rect.top - area.top + point.y}px`,
    width: `${2 * state.brush.radius}px`,
    height: `${2 * state.brush.radius}px`,
  });
  if (!stroke || stroke.pointerId !== event.pointerId) return;
  const events = typeof event.getCoalescedEvents === "function" ? event.getCoalescedEvents() : [];
  for (const each of events.length ? events : [event]) {
    const next = cssPoint(each);
    const [x, y] = stroke.points[stroke.points.length - 1];
    if (Math.hypot(next.x - x, next.y - y) < 0.5) continue;
    stroke.points.push([next.x, next.y]);
  }
  drawStroke();
}

function endStroke(/** @type {PointerEvent} */ event) {
  if (!stroke || stroke.pointerId !== event.pointerId) return;
  const { points, w, h, add } = stroke;
  stroke = null;
  command({
    type: "stroke",
    points: points.slice(0, 4096),
    radius: state.brush.radius,
    css_width: w,
    css_height: h,
    hardness: state.brush.hardness,
    add,
  });
}

// --- zoom and pan (issue 16) ---------------------------------------------------------------------------
// The wheel zooms around the pointer (1x to 16x), a middle-button drag or Space + drag pans; F fits the photo
// again, H shows it at 100 % (a photo pixel a CSS pixel). A CSS transform of the canvas: clicks, boxes, hovers
// and strokes are mapped from the canvas's transformed box (cssPoint), so they land where they are made.
// The pixels are the view's (at most 1024 a side): zoomed in they are enlarged, not re-rendered (not yet).

const zoom = { scale: 1, x: 0, y: 0 };
let spaceHeld = false;
/** @type {{pointerId: number, x: number, y: number, fromX: number, fromY: number} | null} */
let pan = null;

function applyZoom() {
  canvas.style.transformOrigin = "0 0";
  canvas.style.transform = zoom.scale === 1 ? "" : `translate(${zoom.x}px, ${zoom.y}px) scale(${zoom.scale})`;
  imageArea.classList.toggle("zoomed", zoom.scale !== 1);
}

/** Zoom to `scale`, keeping the point at client (cx, cy) where it is. */
export function zoomTo(/** @type {number} */ scale, /** @type {number} */ cx, /** @type {number} */ cy) {
  const next = Math.min(16, Math.max(1, scale));
  const area = imageArea.getBoundingClientRect();
  const u = cx - area.left - canvas.offsetLeft; // the pointer in the canvas's untransformed box
  const v = cy - area.top - canvas.offsetTop;
  const px = (u - zoom.x) / zoom.scale; // the photo's point under it, in untransformed CSS px
  const py = (v - zoom.y) / zoom.scale;
  Object.assign(zoom, next === 1 ? { scale: 1, x: 0, y: 0 } : { scale: next, x: u - px * next, y: v - py * next });
  applyZoom();
}

/** F: the whole photo again; H: 100 %, a photo pixel a CSS pixel, around the middle of the view. */
export function zoomFit() {
  Object.assign(zoom, { scale: 1, x: 0, y: 0 });
  applyZoom();
}
export function zoomActual() {
  const area = imageArea.getBoundingClientRect();
  const width = state.controls?.open ? state.controls.width : canvas.width;
  zoomTo(width / canvas.offsetWidth, area.left + area.width / 2, area.top + area.height / 2);
}

canvas.addEventListener(
  "wheel",
  (event) => {
    event.preventDefault();
    zoomTo(zoom.scale * Math.exp(-event.deltaY * 0.0015), event.clientX, event.clientY);
  },
  { passive: false },
);

function startPan(/** @type {PointerEvent} */ event) {
  event.preventDefault();
  canvas.setPointerCapture(event.pointerId);
  pan = { pointerId: event.pointerId, x: event.clientX, y: event.clientY, fromX: zoom.x, fromY: zoom.y };
}

function movePan(/** @type {PointerEvent} */ event) {
  if (!pan || pan.pointerId !== event.pointerId || zoom.scale === 1) return;
  zoom.x = pan.fromX + event.clientX - pan.x;
  zoom.y = pan.fromY + event.clientY - pan.y;
  applyZoom();
}

addEventListener("keydown", (event) => {
  if (
    event.key === " " &&
    !(event.target instanceof HTMLInputElement) &&
    !(event.target instanceof HTMLButtonElement)
  ) {
    spaceHeld = true;
    if (event.target === canvas || event.target === document.body) event.preventDefault(); // no page scroll
  }
});
addEventListener("keyup", (event) => {
  if (event.key === " ") spaceHeld = false;
});
