// Pyodide's memory snapshot for samtab's worker, made in Node by tools/vendor.py (issue 14):
//
//   node tools/pyodide_snapshot.mjs VENDOR_DIR OUT_FILE
//
// VENDOR_DIR is site/vendor (its pyodide/ folder and pyapp.zip). First an interpreter loads the packages
// and imports pyapp as the worker will, to learn which standard-library modules that takes; then a fresh
// interpreter, started for snapshotting, imports those modules alone and its memory is written to OUT_FILE.
// A worker that boots from it skips the interpreter's start-up and those imports (1.8 s -> 0.25 s here).
// Packages with compiled extensions (numpy, Pillow) cannot be in a snapshot: the worker loads them after.
// The snapshot is tied to this Pyodide build (its header carries the build id): the worker ignores one that
// does not match and boots without it.
import { readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

const [vendor, out] = process.argv.slice(2);
if (!vendor || !out) {
  console.error("usage: node tools/pyodide_snapshot.mjs VENDOR_DIR OUT_FILE");
  process.exit(2);
}
const indexURL = `${resolve(vendor, "pyodide")}/`;
const { loadPyodide } = await import(pathToFileURL(`${indexURL}pyodide.mjs`).href);
// The same environment as the worker's: no variables of this process in the image.
const env = { HOME: "/home/pyodide" };
const quiet = { stdout: () => {}, stderr: (line) => console.error(line) };

// Which standard-library modules the worker's imports load (names only; nothing of pyapp is kept).
const probe = await loadPyodide({ indexURL, env, ...quiet });
await probe.loadPackage(["numpy", "pillow", "msgpack"], { messageCallback: () => {} });
probe.unpackArchive(new Uint8Array(readFileSync(resolve(vendor, "pyapp.zip"))), "zip");
const names = probe
  .runPython(`
import pkgutil, sys
import PIL.Image, msgpack, numpy
import pyapp
for module in pkgutil.walk_packages(pyapp.__path__, "pyapp."):
    if not module.name.startswith("pyapp.web"):  # the browser edge imports js, which a snapshot cannot hold
        __import__(module.name)
stdlib = sys.stdlib_module_names
sorted(name for name in sys.modules if name.partition(".")[0] in stdlib and not name.startswith("_pyodide"))
`)
  .toJs();

const maker = await loadPyodide({ indexURL, env, _makeSnapshot: true, ...quiet });
maker.globals.set("names", maker.toPy(names));
maker.runPython(`
import importlib
for name in names:
    try:
        importlib.import_module(name)
    except ImportError:
        pass  # a module that needs what only the browser has; imported there if ever needed
del names, name, importlib
`);
const snapshot = maker.makeMemorySnapshot();
// The worker's WebAssembly memory is made as large as the snapshot: whole 64 KiB pages.
const padded = new Uint8Array(Math.ceil(snapshot.length / 65536) * 65536);
padded.set(snapshot);
writeFileSync(out, padded);
console.log(JSON.stringify({ modules: names.length, bytes: padded.length }));
