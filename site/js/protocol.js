// @ts-check
// The messages between the page and its Python worker, as types: the protocol that pyapp/session.py's
// docstring describes, and the start-up and housekeeping messages of pyapp/web/worker.py's. Types only:
// the page never loads this file (JSDoc's import() types read it).

// --- page → worker ---------------------------------------------------------------------------------------

/**
 * A demo to open; the page passes the bundle's and the decoder's bytes when it has them.
 * @typedef {object} OpenDemo
 * @property {"open"} type
 * @property {number} seq  the photo's number (state.openSeq): answers about an older photo are ignored
 * @property {string} bundle_url
 * @property {string} model_url  the model's folder, ending in /
 * @property {string} preview_url
 * @property {string} name
 * @property {ArrayBuffer} [bundle]
 * @property {ArrayBuffer} [decoder]
 */

/**
 * One's own photo and its bundle, read in the tab.
 * @typedef {object} OpenFiles
 * @property {"open-files"} type
 * @property {number} seq
 * @property {ArrayBuffer} photo
 * @property {string} photo_name
 * @property {ArrayBuffer} bundle
 * @property {string} bundle_name
 * @property {Record<string, string>} models  model name → URL of its folder
 */

/**
 * A click, in CSS pixels on the canvas. `cmd` and `id` are set by the page's command(); `joins` only in
 * the log: whether the click joined the step before (a replay rebuilds the same steps).
 * @typedef {object} Click
 * @property {"click"} type
 * @property {number} [cmd]  the page's count of commands, echoed in the answer
 * @property {number} [id]  the page's count of clicks and boxes
 * @property {number} x
 * @property {number} y
 * @property {number} css_width
 * @property {number} css_height
 * @property {boolean} include
 * @property {number} t0  performance.now() when it was made
 * @property {boolean} [joins]
 */

/**
 * A box dragged on the canvas, in CSS pixels.
 * @typedef {object} Box
 * @property {"box"} type
 * @property {number} [cmd]
 * @property {number} [id]
 * @property {number} x0
 * @property {number} y0
 * @property {number} x1
 * @property {number} y1
 * @property {number} css_width
 * @property {number} css_height
 * @property {number} t0
 * @property {boolean} [joins]
 */

/**
 * @typedef {{type: "undo" | "redo" | "clear" | "new-object", cmd?: number}} Plain
 * @typedef {{type: "select" | "delete", cmd?: number, id: number}} PickObject
 * @typedef {{type: "rename", cmd?: number, id: number, name: string}} Rename
 * @typedef {{type: "classify", cmd?: number, id: number, label: string | null}} Classify  give an object a class
 * @typedef {{type: "candidate", cmd?: number, index: number}} Candidate
 * @typedef {{type: "view", cmd?: number, view: string, opacity: number, feather?: number}} View  feather: the
 *   cutout's soft edge (the view and the PNG), in photo pixels
 */

/**
 * What changes the photo's state: numbered, kept until answered, replayed into a restarted worker, saved.
 * @typedef {Click | Box | Plain | PickObject | Rename | Classify | Candidate | View | Everything | Subject | Stroke}
 *   Command
 */

/**
 * @typedef {{type: "replay", messages: Command[]}} Replay  commands applied before, applied again in order
 * @typedef {{type: "reset"}} Reset  every object and the undo history dropped (sent without a cmd: not logged)
 * @typedef {{type: "export", what: "mask" | "cutout" | "masks" | "coco" | "yolo" | "labels", tolerance?: number}}
 *   Export  a download; "labels": the objects as a collection keeps them (JSON), for the page
 * @typedef {{type: "collection-export", what: "coco" | "yolo", index: object, session: object, tolerance?: number,
 *   images?: Record<string, ArrayBuffer>}} CollectionExport  the whole collection's COCO, or YOLO zip
 *   tolerance: the polygons' simplification in pixels (coco, yolo)
 * @typedef {{type: "hover", x: number, y: number, css_width: number, css_height: number, include: boolean,
 *   press?: boolean}} Hover  the pointer rests there, or a mouse button went down there (press): what a click
 *   there would make is decoded ahead of the click
 * @typedef {{type: "hover-end"}} HoverEnd
 * @typedef {{type: "boot", base: string, diagnostics: boolean}} Boot
 * @typedef {{type: "everything", cmd?: number, points_per_side: number}} Everything  segment the whole photo
 * @typedef {{type: "everything-cancel"}} EverythingCancel  stop it between two decodes (nothing is added)
 * @typedef {{type: "subject", cmd?: number}} Subject  remove background: the main subject as a new object, cut out
 * @typedef {{type: "stroke", cmd?: number, points: number[][], radius: number, css_width: number, css_height: number,
 *   hardness?: number, add?: boolean}} Stroke  a brush stroke on the current object (pyapp.brush)
 * @typedef {{type: "viewport", id: number, x0?: number, y0?: number, x1?: number, y1?: number, width?: number,
 *   height?: number}} Viewport  zoomed in: the part of the photo shown (its pixels' edges) covers width × height
 *   screen pixels, so frames bring it drawn from the photo's own pixels; width 0: zoomed out
 * @typedef {{type: "prepare", seq: number, photo: ArrayBuffer, photo_name: string}} Prepare  a photo without a
 *   bundle, to be encoded in the tab (js/encode.js): its encoder input is made (pyapp.image)
 * @typedef {{type: "make-bundle", seq: number, embeddings: Record<string, ArrayBuffer>, width: number,
 *   height: number, sha256: string, model_name: string}} MakeBundle  the encoder's outputs, written as a bundle
 * @typedef {{type: "collection", seq: number, index?: string, url?: string,
 *   folder?: Record<string, {header?: ArrayBuffer, width?: number, height?: number}>, model?: string}}
 *   OpenCollection  a collection's index (collection.json) to be checked (pyapp.collection), or a folder
 *   without one (its files: a bundle's first bytes, a photo's size); the photo open is untouched
 * @typedef {{type: "session", seq: number, index: object, session: string}} OpenSession  a session file, to be
 *   checked against the open collection (pyapp.collection.read_session)
 * @typedef {{type: "ping"}} Ping  the page's watchdog; answered with a pong
 * @typedef {{type: "stats"}} StatsRequest
 */

/**
 * @typedef {{type: "warm-decoder", model_url: string, family: string, decoder: ArrayBuffer}} WarmDecoder  a demo's
 *   decoder, sent as soon as it is downloaded: site/pyworker.js makes its session and runs it once while
 *   Python boots (the photo's "open" then comes without the decoder)
 */

/**
 * @typedef {OpenDemo | OpenFiles | WarmDecoder | Command | Replay | Reset | Export | Hover | HoverEnd | Boot | Ping | StatsRequest |
 *   EverythingCancel | Viewport | Prepare | MakeBundle | OpenCollection | CollectionExport |
 *   OpenSession} ToWorker
 */

// --- worker → page ---------------------------------------------------------------------------------------

/**
 * One object, as the controls show it.
 * @typedef {object} ObjectState
 * @property {number} id
 * @property {string} name
 * @property {string | null} label  its class
 * @property {string} colour  #rrggbb
 * @property {number} clicks
 * @property {boolean} has_mask
 */

/**
 * The state of the controls (pyapp.app.App.state()): `{open: false}` until a photo is open.
 * @typedef {{open: false} | OpenControls} Controls
 * @typedef {object} OpenControls
 * @property {true} open
 * @property {number} width
 * @property {number} height
 * @property {string} view
 * @property {number} opacity
 * @property {ObjectState[]} objects
 * @property {number | null} current  the id of the current object
 * @property {boolean} can_undo
 * @property {boolean} can_redo
 * @property {number[]} candidates  the current step's predicted IoU of each candidate mask
 * @property {number | null} chosen
 * @property {Prompt | null} prompt
 */

/**
 * An object's prompt: points [x, y, include], in the photo's pixels; a box [x0, y0, x1, y1]; solid: a subject
 * (remove background), its holes filled and its specks dropped.
 * @typedef {{points: number[][], box: number[] | null, solid?: boolean}} Prompt
 */

/**
 * A decoded mask (the samtab:mask event's detail, less the page's share of the latency).
 * @typedef {object} Mask
 * @property {number} object
 * @property {number} clicks
 * @property {number} mask_index
 * @property {number} iou
 * @property {number} area_px
 * @property {Prompt} prompt
 * @property {boolean} refined
 * @property {number} input
 * @property {boolean} [speculated]  the click took the decode made while the pointer rested where it came
 * @property {Record<string, number>} latency_ms
 */

/**
 * What the worker says once Python and onnxruntime-web are ready (the samtab:ready event's detail).
 * @typedef {object} ReadyInfo
 * @property {Record<string, string>} versions
 * @property {number} threads
 * @property {boolean} cross_origin_isolated
 * @property {string} execution_provider
 * @property {string} notice  e.g. why WebGPU is not used ("" for none)
 * @property {object} selftest
 * @property {{packages_ms: number, ort_ms: number, ort_session_ms: number}} timings
 */

/**
 * @typedef {{type: "python", snapshot: "snapshot" | "fallback" | "none", timings: Record<string, number>}}
 *   Python  Python runs (site/pyworker.js): booted from the build's memory snapshot, without it because it
 *   was not valid (fallback), or without it because the build has none; timings: ms since the worker started
 * @typedef {{type: "boot-failed", message: string}} BootFailed  Python could not start (site/pyworker.js)
 * @typedef {{type: "status", text: string, phase: string}} Status
 * @typedef {{type: "progress", what: string, done: number, total: number, found: number, per_run: number}} Progress
 *   a long job's progress (segment everything: points decoded of all, masks kept so far, points per decoder run)
 * @typedef {{type: "ready", info: ReadyInfo}} Ready
 * @typedef {{type: "opened", seq: number, width: number, height: number, view_width: number,
 *   view_height: number, model_name: string, photo_key: string, timings: Record<string, number>}} Opened
 * @typedef {{type: "applied", cmd: number, joins?: boolean, x?: number, y?: number}} Applied  a command took
 *   effect; x, y: the rested point a click committed (it took the decode speculated there)
 * @typedef {{type: "refused", cmd: number}} Refused  a command had nothing to do
 * @typedef {{id: number, x0: number, y0: number, x1: number, y1: number, width: number, height: number,
 *   pixels: ArrayBuffer}} DetailPixels  the photo's pixels [x0, x1) × [y0, y1) drawn on width × height RGBA pixels,
 *   for viewport `id`
 * @typedef {{type: "frame", seq: number, width: number, height: number, pixels: ArrayBuffer | null,
 *   state: Controls, mask?: Mask, t0?: number | null, detail?: DetailPixels}} Frame  RGBA pixels, ready to paint;
 *   zoomed in, the part shown in detail too, and the view's pixels (null) only after a zoom or a pan
 * @typedef {{type: "detail", seq: number} & DetailPixels} Detail  the part shown, after a zoom or a pan
 * @typedef {{type: "prepared", seq: number, tensor: ArrayBuffer, width: number, height: number, sha256: string}}
 *   Prepared  a photo's encoder input (1x3x1024x1024 float32) and what its bundle says of it
 * @typedef {{type: "bundle-made", seq: number, data: ArrayBuffer}} BundleMade  the bundle of a photo encoded here
 * @typedef {{name: string, width: number, height: number, sha256: string | null, bundle: string | null,
 *   preview: string | null, photo: string | null}} CollectionPhoto  paths relative to the index
 * @typedef {{type: "collection", seq: number, name: string, model: string, classes: string[],
 *   photos: CollectionPhoto[]}} CollectionOpened  a collection's index, checked
 * @typedef {{name: string, class: string | null, mask: {size: number[], counts: string}}} Labelled  an object as a
 *   collection's session keeps it
 * @typedef {{sha256: string | null, status: string, log: Command[], objects: Labelled[]}} PhotoWork
 * @typedef {{kind: "samtab-session", version: number, collection: string, model: string, classes: string[],
 *   current: string | null, photos: Record<string, PhotoWork>}} SessionDocument
 * @typedef {{type: "session", seq: number, session: SessionDocument}} SessionOpened  a session file, checked
 * @typedef {{type: "settled", input: number}} Settled  nothing left to decode; input: the last input's id
 * @typedef {{type: "download", what: string, name: string, mime: string, data: ArrayBuffer}} Download
 * @typedef {{type: "error", phase: string, message: string, hint: string, fatal: boolean, refused?: number,
 *   restart?: boolean}} WorkerError  refused: the cmd that failed; restart: restart the worker
 * @typedef {{type: "pong"}} Pong
 * @typedef {{type: "stats"} & Record<string, unknown>} Stats  memory figures, for samtab:stats
 */

/**
 * @typedef {Python | BootFailed | Progress | Status | Ready | Opened | Applied | Refused | Frame | Settled | Download |
 *   WorkerError | Pong | Stats | Detail | Prepared | BundleMade | CollectionOpened |
 *   SessionOpened} FromWorker
 */

export {};
