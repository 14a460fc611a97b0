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
  zoomFit(); // a new photo shows whole
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
  const { rect, inner } = boxes(); // (absolute positions start inside the area's border)
  boxRect.hidden = false;
  Object.assign(boxRect.style, {
    left: `${rect.left - inner.left + Math.min(a.x, b.x)}px`,
    top: `${rect.top - inner.top + Math.min(a.y, b.y)}px`,
    width: `${Math.abs(b.x - a.x)}px`,
    height: `${Math.abs(b.y - a.y)}px`,
  });
}

canvas.addEventListener("contextmenu", (event) => event.preventDefault());

canvas.addEventListener("pointerdown", (event) => {
  clearTimeout(restTimer);
  if (touchStarted(event)) return;
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
  // The click's decode starts now rather than when the button, pen or finger comes up (a press lasts ~100 ms):
  // the worker decodes a click here ahead, not shown; the click takes it, a drag drops it. A touch decodes the
  // tap (an include in Include mode); a long press, which excludes, is decoded when it is made. Switched with
  // the hover preview.
  if (hoverPreview.checked && state.opened && state.shown === state.photo && canSend()) {
    const { x, y, w, h } = press.start;
    const include = event.button === 0 && !state.excludeMode;
    send({ type: "hover", x, y, css_width: w, css_height: h, include, press: true });
  }
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
  if (touchMoved(event)) return;
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
  // click, the hover preview; after it, kept for the click). Nothing is sent while the pointer moves. A mouse
  // or a pen held over the screen (a finger is only seen while it touches).
  clearTimeout(restTimer);
  if (!hoverPreview.checked || event.pointerType === "touch" || !state.opened) return;
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
  if (touchEnded(event)) return;
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

canvas.addEventListener("pointercancel", (event) => {
  touchEnded(event);
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

/** The layer over what shows of the photo (zoomed in, the canvas's box is far larger than the screen), at the
 * screen's pixel ratio, drawing in CSS pixels of the canvas's box as strokes are recorded. */
function placeBrushLayer() {
  const { rect, inner } = boxes();
  const ratio = devicePixelRatio || 1;
  const left = Math.max(rect.left, inner.left);
  const top = Math.max(rect.top, inner.top);
  const width = Math.max(1, Math.min(rect.right, inner.right) - left);
  const height = Math.max(1, Math.min(rect.bottom, inner.bottom) - top);
  Object.assign(brushLayer.style, {
    left: `${left - inner.left}px`,
    top: `${top - inner.top}px`,
    width: `${width}px`,
    height: `${height}px`,
  });
  brushLayer.width = Math.round(width * ratio);
  brushLayer.height = Math.round(height * ratio);
  brushCtx.setTransform(ratio, 0, 0, ratio, (rect.left - left) * ratio, (rect.top - top) * ratio);
}

export function clearBrushLayer() {
  brushCtx.save();
  brushCtx.setTransform(1, 0, 0, 1, 0, 0);
  brushCtx.clearRect(0, 0, brushLayer.width, brushLayer.height);
  brushCtx.restore();
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
  const { rect, inner } = boxes();
  brushCursor.hidden = false;
  Object.assign(brushCursor.style, {
    left: `${rect.left - inner.left + point.x}px`,
    top: `${rect.top - inner.top + point.y}px`,
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
// The wheel zooms around the pointer (from the whole photo to 16x that, or to 800 % of the photo's own pixels
// when that is more: a 12 MP photo fits at about 20 %), a middle-button drag or Space + drag pans; F fits the photo
// again, H shows it at 100 % (a photo pixel a CSS pixel). A CSS transform of the canvas: clicks, boxes, hovers
// and strokes are mapped from the canvas's transformed box (cssPoint), so they land where they are made.
// Zoomed in, the view's pixels (at most 1024 a side) are too few for the screen: see "detail" below.

const zoom = { scale: 1, x: 0, y: 0 };
let spaceHeld = false;
/** @type {{pointerId: number, x: number, y: number, fromX: number, fromY: number} | null} */
let pan = null;

function applyZoom() {
  canvas.style.transformOrigin = "0 0";
  canvas.style.transform = zoom.scale === 1 ? "" : `translate(${zoom.x}px, ${zoom.y}px) scale(${zoom.scale})`;
  imageArea.classList.toggle("zoomed", zoom.scale !== 1);
  imageArea.classList.remove("detailed"); // the view shows where the detail drawn for the last place does not
  drawDetail();
  askForDetail();
}

/** The most the canvas is enlarged: 16x, or 800 % of the photo's own pixels when that is more. */
function maxZoom() {
  const width = state.controls?.open ? state.controls.width : canvas.width;
  return Math.max(16, (8 * width) / (canvas.offsetWidth || 1));
}

/** Zoom to `scale`, keeping the point at client (cx, cy) where it is. */
export function zoomTo(/** @type {number} */ scale, /** @type {number} */ cx, /** @type {number} */ cy) {
  const next = Math.min(maxZoom(), Math.max(1, scale));
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

/** + and -: twice or half the zoom, around the middle of what shows. */
export function zoomStep(/** @type {number} */ factor) {
  const area = imageArea.getBoundingClientRect();
  zoomTo(zoom.scale * factor, area.left + area.width / 2, area.top + area.height / 2);
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

// Two fingers pan and pinch-zoom (touch): the photo's point between them stays between them. A second finger
// drops what the first began (a press, a stroke): nothing is clicked or painted by a pinch.

/** @type {Map<number, {x: number, y: number}>} */
const touches = new Map();
/** @type {{distance: number, scale: number, px: number, py: number} | null} */
let pinch = null;

function fingers() {
  const [a, b] = touches.values();
  return { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2, distance: Math.max(1, Math.hypot(a.x - b.x, a.y - b.y)) };
}

/** A finger down; true if it is a pinch's (the others do nothing with it). */
function touchStarted(/** @type {PointerEvent} */ event) {
  if (event.pointerType !== "touch") return false;
  touches.set(event.pointerId, { x: event.clientX, y: event.clientY });
  if (touches.size !== 2) return pinch !== null || touches.size > 2;
  if (press) clearTimeout(press.timer);
  press = null;
  boxRect.hidden = true;
  stroke = null;
  clearBrushLayer();
  canvas.setPointerCapture(event.pointerId);
  const { x, y, distance } = fingers();
  const area = imageArea.getBoundingClientRect();
  const u = x - area.left - canvas.offsetLeft;
  const v = y - area.top - canvas.offsetTop;
  pinch = { distance, scale: zoom.scale, px: (u - zoom.x) / zoom.scale, py: (v - zoom.y) / zoom.scale };
  return true;
}

function touchMoved(/** @type {PointerEvent} */ event) {
  if (!pinch || !touches.has(event.pointerId)) return false;
  touches.set(event.pointerId, { x: event.clientX, y: event.clientY });
  if (touches.size < 2) return true; // one finger of a pinch left: it waits to be lifted
  const { x, y, distance } = fingers();
  const next = Math.min(maxZoom(), Math.max(1, (pinch.scale * distance) / pinch.distance));
  const area = imageArea.getBoundingClientRect();
  const u = x - area.left - canvas.offsetLeft;
  const v = y - area.top - canvas.offsetTop;
  Object.assign(
    zoom,
    next === 1 ? { scale: 1, x: 0, y: 0 } : { scale: next, x: u - pinch.px * next, y: v - pinch.py * next },
  );
  applyZoom();
  return true;
}

/** A finger up (or cancelled); true if it was a pinch's. */
function touchEnded(/** @type {PointerEvent} */ event) {
  if (event.pointerType !== "touch" || !touches.delete(event.pointerId)) return false;
  if (!pinch) return false;
  if (touches.size === 0) pinch = null; // the last finger of a pinch lifted: the next touch starts afresh
  return true;
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

// --- detail (issue 16) -----------------------------------------------------------------------------------
// Zoomed in, the part of the photo on screen is drawn by the worker from the photo's own pixels (a detail:
// pyapp.frames.Frames.detail, the masks the exports hold), asked for once a zoom or a pan has settled and
// brought again by every frame. It is laid on a canvas of its own over the photo, at the screen's resolution:
// beyond 100 % each photo pixel is a sharp block (as image editors show it), and the clicks' markers are drawn
// on it at their usual size. Until a detail comes, the view's enlarged pixels show.

/** @type {HTMLCanvasElement} */
const detailCanvas = $("detail");
const detailCtx = /** @type {CanvasRenderingContext2D} */ (detailCanvas.getContext("2d"));
const detailPixels = document.createElement("canvas"); // the last detail, at its own size
const detailPixelsCtx = /** @type {CanvasRenderingContext2D} */ (detailPixels.getContext("2d"));
const DETAIL_SETTLE_MS = 120; // a zoom or pan still for this long asks for a detail
/** @type {ReturnType<typeof setTimeout> | undefined} */
let detailTimer;
let viewportId = 0;
let viewportSent = false; // the worker was told of a viewport (and draws details with every frame)
/** @type {{x0: number, y0: number, x1: number, y1: number} | null} */
let detail = null; // the photo's pixels the last detail shows

/** The photo's size (the worker's), or null before it says. */
function photoSize() {
  const open = state.controls?.open ? state.controls : null;
  return open ? { width: open.width, height: open.height } : null;
}

/** The canvas's box and the image area's inner box (where anything shows), in client pixels. */
function boxes() {
  const rect = canvas.getBoundingClientRect();
  const area = imageArea.getBoundingClientRect();
  const left = area.left + imageArea.clientLeft;
  const top = area.top + imageArea.clientTop;
  return { rect, inner: { left, top, right: left + imageArea.clientWidth, bottom: top + imageArea.clientHeight } };
}

/** Tell the worker which part of the photo shows (or that none needs a detail), once zoom and pan settle. */
function askForDetail() {
  clearTimeout(detailTimer);
  detailTimer = setTimeout(() => {
    const size = photoSize();
    if (!size || !state.opened || !canSend()) return;
    const { rect, inner } = boxes();
    const ratio = devicePixelRatio || 1;
    // Needed only when the view's pixels are enlarged on screen.
    const wanted = zoom.scale > 1 && rect.width * ratio > canvas.width;
    viewportId += 1;
    if (!wanted) {
      if (viewportSent) send({ type: "viewport", id: viewportId });
      viewportSent = false;
      dropDetail();
      return;
    }
    const left = Math.max(rect.left, inner.left);
    const right = Math.min(rect.right, inner.right);
    const top = Math.max(rect.top, inner.top);
    const bottom = Math.min(rect.bottom, inner.bottom);
    if (right <= left || bottom <= top) return; // panned off the photo
    const sx = size.width / rect.width;
    const sy = size.height / rect.height;
    send({
      type: "viewport",
      id: viewportId,
      x0: (left - rect.left) * sx,
      y0: (top - rect.top) * sy,
      x1: (right - rect.left) * sx,
      y1: (bottom - rect.top) * sy,
      width: Math.max(1, Math.round((right - left) * ratio)),
      height: Math.max(1, Math.round((bottom - top) * ratio)),
    });
    viewportSent = true;
  }, DETAIL_SETTLE_MS);
}
addEventListener("resize", askForDetail);

/**
 * A detail from the worker (alone after a zoom or pan, or with a frame): painted if it is for the latest
 * viewport; a frame without one while zoomed in leaves the view's pixels showing until the next.
 * @param {import("./protocol.js").DetailPixels | undefined} pixels
 */
export function paintDetail(pixels) {
  if (!pixels) {
    if (viewportSent) dropDetail();
    return;
  }
  if (pixels.id !== viewportId || zoom.scale === 1) return; // drawn for an earlier place
  detailPixels.width = pixels.width;
  detailPixels.height = pixels.height;
  detailPixelsCtx.putImageData(new ImageData(new Uint8ClampedArray(pixels.pixels), pixels.width, pixels.height), 0, 0);
  detail = { x0: pixels.x0, y0: pixels.y0, x1: pixels.x1, y1: pixels.y1 };
  drawDetail();
  imageArea.classList.add("detailed"); // the detail covers what shows: the view's own pixels are hidden
}

function dropDetail() {
  detail = null;
  detailCanvas.hidden = true;
  imageArea.classList.remove("detailed");
}

/** @type {CanvasPattern | null} */
let checkers = null;
/** The checkerboard the canvas's CSS shows through transparent pixels, as a pattern of `size` device pixels. */
function checkerPattern(/** @type {number} */ size) {
  const tile = document.createElement("canvas");
  tile.width = tile.height = size * 2;
  const tileCtx = /** @type {CanvasRenderingContext2D} */ (tile.getContext("2d"));
  tileCtx.fillStyle = "#f0f0ec";
  tileCtx.fillRect(0, 0, size * 2, size * 2);
  tileCtx.fillStyle = "#c8c8c4";
  tileCtx.fillRect(0, 0, size, size);
  tileCtx.fillRect(size, size, size, size);
  return detailCtx.createPattern(tile, "repeat");
}

/** Lay the last detail where its pixels are on screen now, and the current object's clicks and box on it. */
function drawDetail() {
  const size = photoSize();
  if (!detail || !size || zoom.scale === 1) {
    detailCanvas.hidden = true;
    return;
  }
  const ratio = devicePixelRatio || 1;
  const { rect, inner } = boxes();
  const width = Math.round(imageArea.clientWidth * ratio);
  const height = Math.round(imageArea.clientHeight * ratio);
  if (detailCanvas.width !== width || detailCanvas.height !== height) {
    detailCanvas.width = width;
    detailCanvas.height = height;
    checkers = null;
  }
  detailCanvas.style.width = `${imageArea.clientWidth}px`;
  detailCanvas.style.height = `${imageArea.clientHeight}px`;
  detailCtx.clearRect(0, 0, width, height);
  // photo pixels → device pixels of this canvas
  const sx = (rect.width / size.width) * ratio;
  const sy = (rect.height / size.height) * ratio;
  const ox = (rect.left - inner.left) * ratio;
  const oy = (rect.top - inner.top) * ratio;
  const x = ox + detail.x0 * sx;
  const y = oy + detail.y0 * sy;
  const w = (detail.x1 - detail.x0) * sx;
  const h = (detail.y1 - detail.y0) * sy;
  checkers ??= checkerPattern(Math.round(10 * ratio));
  if (checkers) {
    detailCtx.fillStyle = checkers;
    detailCtx.fillRect(x, y, w, h);
  }
  detailCtx.imageSmoothingEnabled = w < detailPixels.width; // enlarged: each photo pixel a sharp block
  detailCtx.drawImage(detailPixels, x, y, w, h);
  // The current object's clicks and box, as the worker draws them on the view (pyapp.composite.markers).
  const open = state.controls?.open ? state.controls : null;
  const prompt = open?.prompt;
  if (prompt) {
    const at = (/** @type {number} */ px, /** @type {number} */ py) => [ox + (px + 0.5) * sx, oy + (py + 0.5) * sy];
    if (prompt.box) {
      const [bx0, by0] = at(prompt.box[0], prompt.box[1]);
      const [bx1, by1] = at(prompt.box[2], prompt.box[3]);
      detailCtx.strokeStyle = "rgb(37 99 235)";
      detailCtx.lineWidth = 2 * ratio;
      detailCtx.strokeRect(bx0, by0, bx1 - bx0, by1 - by0);
    }
    for (const [px, py, include] of prompt.points) {
      const [cx, cy] = at(px, py);
      detailCtx.beginPath();
      detailCtx.arc(cx, cy, 7 * ratio, 0, 2 * Math.PI);
      detailCtx.fillStyle = "#fff";
      detailCtx.fill();
      detailCtx.beginPath();
      detailCtx.arc(cx, cy, 5 * ratio, 0, 2 * Math.PI);
      detailCtx.fillStyle = include ? "rgb(34 197 94)" : "rgb(239 68 68)";
      detailCtx.fill();
    }
  }
  detailCanvas.hidden = false;
}
