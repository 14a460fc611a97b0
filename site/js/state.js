// @ts-check
// The page's state: one object, every field declared here, shared by the modules. (What a single module
// alone needs, such as a pointer press in progress, a timer or the database handle, stays in that module.)

/** @typedef {import("./protocol.js").Command} Command */
/** @typedef {import("./protocol.js").Controls} Controls */
/** @typedef {import("./protocol.js").ReadyInfo} ReadyInfo */

/**
 * A demo (demos/index.json, or a demo folder's demo.json), with absolute URLs.
 * @typedef {object} Demo
 * @property {string} slug
 * @property {string} title
 * @property {string} credit
 * @property {string} licence
 * @property {number} width
 * @property {number} height
 * @property {string} model_name
 * @property {string} [photo]  the photo's key, the same for each model it has a demo with (the gallery's card)
 * @property {string} previewUrl
 * @property {string} bundleUrl
 * @property {string} modelUrl  the model's folder, ending in /
 */

/**
 * The commands of one photo (see `state`), kept while another photo opens: given back if it is refused.
 * @typedef {object} Work
 * @property {Command[]} log
 * @property {Map<number, Command>} unacked
 * @property {Command[]} outbox
 * @property {string} sessionId
 */

/**
 * A photo the person chose: a demo, or their own photo and bundle.
 * @typedef {object} Photo
 * @property {"demo" | "files"} kind
 * @property {number} seq  its number: the worker's answers about another photo are ignored
 * @property {string | null} slug  the demo's; null for one's own files
 * @property {Demo} [demo]
 * @property {Promise<{bundle: ArrayBuffer, decoder: ArrayBuffer, warmedIn: () => Worker | null}>} [downloads]  a
 *   demo's, fetched at once (warmedIn: the worker that was sent the decoder early)
 * @property {string} [photoName]  one's own files' names
 * @property {string} [bundleName]
 * @property {{photo: ArrayBuffer, bundle: ArrayBuffer}} [files]  their bytes, once read
 * @property {string} [key]  "<photo sha256>|<model name>", once open: what its saved work is filed under
 * @property {Work} [work]  its commands while another photo opens
 * @property {Command[]} [carry]  commands applied on this photo with another model, applied again once it opens
 * @property {boolean} [encoded]  its bundle was made in this tab (issue 17): "Save bundle" saves it
 * @property {number} [collection]  its index in the open collection, when it is one of its photos
 */

/**
 * A photo of a collection: as collection.json lists it, with this site's URLs (null: none).
 * @typedef {import("./protocol.js").CollectionPhoto & {bundleUrl: string | null, previewUrl: string | null,
 *   photoUrl: string | null, file?: File}} CollectionPhoto  (file: the photo's, from a folder opened here)
 */

/**
 * The open collection (collection.js).
 * @typedef {object} Collection
 * @property {string} url  its index's
 * @property {string} name
 * @property {string} model  the model's name (its bundles')
 * @property {string} modelUrl
 * @property {string[]} classes
 * @property {CollectionPhoto[]} photos
 * @property {number} index  the photo open (-1: none yet)
 * @property {Map<string, Command[]>} work  each photo's commands, by name, while another photo is open
 * @property {Map<string, import("./protocol.js").Labelled[]>} labels  each photo's objects (name, class, mask),
 *   by name, as they were when it was left: what the whole collection's exports are made of
 * @property {Set<string>} done  the photos marked done
 * @property {string[]} asked  the photos whose objects were asked of the worker, in order, not yet answered
 * @property {number} sessionSeq  the session file sent to be read last
 * @property {boolean} [resuming]  the work saved on an earlier visit is being read: nothing is saved meanwhile
 */

/**
 * Work saved in IndexedDB: one entry per visit of a photo (saves.js).
 * @typedef {object} SavedWork
 * @property {string} id  the visit's state.sessionId
 * @property {string} key  the photo's key
 * @property {number} saved  ms since the epoch
 * @property {number} objects
 * @property {number} clicks
 * @property {Command[]} log
 */

export const state = {
  // --- the worker ---
  /** @type {any} the Python worker (site/pyworker.js) */
  worker: null,
  workerReady: false, // Python and onnxruntime-web are ready in it
  /** @type {ReadyInfo | null} what it said when ready */
  readyInfo: null,
  lastHeard: 0, // performance.now() of its last message (the watchdog's clock)
  restarts: 0,
  /** @type {number[]} performance.now() of the restarts in the last minute */
  restartTimes: [],
  restarting: false, // restarted, the photo not yet open again in it: then its work is replayed
  failedForGood: false, // it failed too often to be restarted again
  /** @type {{painted_ms?: number, python_ms?: number, ort_ms?: number}} for samtab:ready */
  timings: {},

  // --- photos ---
  /** @type {Demo[]} */
  demos: [],
  /** @type {Record<string, string>} model name → absolute URL of its folder */
  models: {},
  /** @type {Photo | null} the photo chosen last (its pixels may still be coming) */
  photo: null,
  /** @type {Photo | null} the photo whose pixels are on the canvas: clicks land on it, or nowhere */
  shown: null,
  /** @type {Photo | null} the photo the worker had open when another was chosen (kept if that one is refused) */
  previousPhoto: null,
  openSeq: 0,
  opening: false, // a photo is being opened
  opened: false, // the worker has the current photo
  encoding: false, // a person's photo is being encoded in the tab (js/encode.js)
  /** @type {Set<string>} URLs loaded by workers of their own (the encoder) for the service worker to keep */
  keep: new Set(),

  // --- commands (clicks, boxes, undo, names, views…) for the current photo, numbered by `cmd` ---
  /** @type {Command[]} not sent yet (the photo is still opening, or the worker restarting) */
  outbox: [],
  /** @type {Map<number, Command>} sent, not answered yet (cmd → message), in the order sent */
  unacked: new Map(),
  /** @type {Command[]} applied by the worker, in order, each click or box saying whether it joined the step
   * before: replayed into a restarted worker, and saved (IndexedDB) to be restored after a reload */
  log: [],
  cmdSeq: 0,
  inputSeq: 0, // clicks and boxes sent, counted
  covered: 0, // the last of them the worker has settled (decoded, with nothing left to decode)

  // --- the controls ---
  /** @type {Controls | null} the last state the worker sent */
  controls: null,
  excludeMode: false,
  /** the brush (issue 16): on (clicks paint instead), removing, its radius in CSS px, its hardness 0..1 */
  brush: { on: false, remove: false, radius: 12, hardness: 0.8 },
  view: "overlay",
  opacity: 0.5,
  /** @type {{cmd: number, done: number, total: number, found: number, perRun: number} | null} a segment-everything run */
  everything: null,
  /** the cutout's soft edge, in photo pixels (0: hard) */
  feather: 0,

  // --- errors ---
  /** @type {"kept" | "fatal" | null} on show: "kept" until the person's next action, "fatal" for good */
  error: null,

  // --- saved work ---
  sessionId: "", // this visit of the photo: the IndexedDB entry its work is saved in
  pruned: "", // the sessionId whose first save pruned older saves (once a visit)
  /** @type {SavedWork | null} the earlier work offered back (#restore) */
  restoreOffer: null,
  /** @type {{messages: number, objects: number, done?: string} | null} a restore (or a model switch's replay)
   * under way, until every command is answered; done: what the status says then */
  restoring: null,
  /** @type {Collection | null} */
  collection: null,
  /** @type {import("./collection.js").CollectionRequest | null} a collection, until the worker has read it */
  collectionRequest: null,
  /** the model the gallery's cards open their photo with (the last one opened), when the photo has it */
  preferredModel: "",
};
