"""A collection: many photos labelled together (issue 18, part 1).

Its index (`collection.json`, written by `samtab-encode --index` beside the bundles), its class list, the work
on each photo (a session), and the exports of the whole: one COCO document and one YOLO segmentation folder.
Pure Python: the page's worker runs it, the tests run it in CPython.

collection.json:
    {"kind": "samtab-collection", "version": 1, "name", "model", "classes": [NAME...],
     "photos": [{"name", "sha256", "width", "height", "bundle", "preview", "photo"}]}
Paths relative to collection.json; "bundle" and "preview" are null for a photo that needs encoding, "photo"
(the photo itself) may be null when it is not served. Names are unique: a photo's name is its key.

A session file (Save session / Open session, and what autosave keeps):
    {"kind": "samtab-session", "version": 1, "collection", "model", "classes": [NAME...], "current": NAME,
     "photos": {NAME: {"sha256", "status": "in progress"|"done", "log": [COMMAND...],
                       "objects": [{"name", "class": NAME|null, "mask": {"size": [H, W], "counts": RLE}}]}}}
"log" is the page's commands on that photo (prompts, strokes, chosen candidates, names: replayed on the same
bundle they rebuild the same masks); "objects" are the masks they made, at the photo's size, so that the
whole collection exports without decoding anything again.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from pyapp import bundle as bundles
from pyapp import export

INDEX_KIND, SESSION_KIND = "samtab-collection", "samtab-session"
VERSION = 1
STATUSES = ("in progress", "done")  # a photo not in the session is "not started"
MAX_CLASSES = 1000
MAX_NAME = 200  # characters of a class or photo name


class CollectionError(ValueError):
    """An index or a session that cannot be used; the message says what is wrong and what to do."""


@dataclass(frozen=True)
class Photo:
    name: str
    width: int
    height: int
    sha256: str | None = None
    bundle: str | None = None  # relative to collection.json; None: needs encoding
    preview: str | None = None
    photo: str | None = None

    @property
    def encoded(self) -> bool:
        return self.bundle is not None


@dataclass
class Collection:
    name: str
    model: str
    photos: list[Photo]
    classes: list[str] = field(default_factory=list)

    def photo(self, name: str) -> Photo:
        for photo in self.photos:
            if photo.name == name:
                return photo
        raise KeyError(name)

    def document(self) -> dict:
        return {
            "kind": INDEX_KIND,
            "version": VERSION,
            "name": self.name,
            "model": self.model,
            "classes": list(self.classes),
            "photos": [
                {
                    "name": p.name,
                    "sha256": p.sha256,
                    "width": p.width,
                    "height": p.height,
                    "bundle": p.bundle,
                    "preview": p.preview,
                    "photo": p.photo,
                }
                for p in self.photos
            ],
        }


@dataclass
class Labelled:
    """One object of one photo, as a session keeps it: its name, its class (or None) and its mask as COCO's
    compressed RLE at the photo's size."""

    name: str
    label: str | None
    size: tuple[int, int]  # (height, width)
    counts: str

    @classmethod
    def of(cls, name: str, label: str | None, mask: np.ndarray) -> Labelled:
        return cls(name, label, mask.shape, export.rle_string(export.rle_counts(mask)))

    def mask(self) -> np.ndarray:
        return mask_from_rle(self.counts, *self.size)

    def document(self) -> dict:
        return {"name": self.name, "class": self.label, "mask": {"size": list(self.size), "counts": self.counts}}


@dataclass
class PhotoWork:
    sha256: str | None
    status: str = "in progress"
    log: list = field(default_factory=list)
    objects: list[Labelled] = field(default_factory=list)


@dataclass
class Session:
    collection: str
    model: str
    classes: list[str]
    photos: dict[str, PhotoWork]
    current: str | None = None

    def document(self) -> dict:
        return {
            "kind": SESSION_KIND,
            "version": VERSION,
            "collection": self.collection,
            "model": self.model,
            "classes": list(self.classes),
            "current": self.current,
            "photos": {
                name: {
                    "sha256": work.sha256,
                    "status": work.status,
                    "log": work.log,
                    "objects": [o.document() for o in work.objects],
                }
                for name, work in self.photos.items()
            },
        }

    def status(self, name: str) -> str:
        work = self.photos.get(name)
        return work.status if work is not None else "not started"


# -- reading, with messages a person can act on ---------------------------------------------------------------


def _json(data: bytes | str | Mapping, what: str) -> Mapping:
    if isinstance(data, Mapping):
        return data
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CollectionError(f"{what} is not JSON ({error}).") from None
    if not isinstance(document, dict):
        raise CollectionError(f"{what} is not a JSON object.")
    return document


def _text(value, what: str, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME:
        raise CollectionError(f"{what} must be a non-empty text of at most {MAX_NAME} characters, not {value!r:.60}.")
    return value


def check_classes(value, what: str) -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_CLASSES:
        raise CollectionError(f"{what}'s classes must be a list of at most {MAX_CLASSES} names.")
    names = [_text(v, f"{what}'s class {i + 1}") for i, v in enumerate(value)]
    if len(set(names)) != len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise CollectionError(f"{what} names the class {twice!r} twice.")
    return names


def _kind(document: Mapping, kind: str, what: str, hint: str) -> None:
    if document.get("kind") != kind:
        raise CollectionError(
            f"{what} is not a samtab {kind.split('-')[1]} (its kind is {document.get('kind')!r}). {hint}"
        )
    if document.get("version") != VERSION:
        raise CollectionError(
            f"{what} is version {document.get('version')!r} of the format; this samtab reads version {VERSION}. "
            "Update samtab, or make it again with this one."
        )


def read_index(data: bytes | str | Mapping, what: str = "collection.json") -> Collection:
    """A collection index, checked; CollectionError says what is wrong."""
    document = _json(data, what)
    _kind(document, INDEX_KIND, what, "Make one with: samtab-encode PHOTOS... --model DIR --out DIR --index")
    name = _text(document.get("name"), f"{what}'s name")
    model = _text(document.get("model"), f"{what}'s model")
    classes = check_classes(document.get("classes", []), what)
    entries = document.get("photos")
    if not isinstance(entries, list) or not entries:
        raise CollectionError(f"{what} lists no photos.")
    photos, seen = [], set()
    for index, entry in enumerate(entries):
        where = f"{what}'s photo {index + 1}"
        if not isinstance(entry, dict):
            raise CollectionError(f"{where} is not an object.")
        photo_name = _text(entry.get("name"), f"{where}'s name")
        if photo_name in seen:
            raise CollectionError(f"{what} lists the photo {photo_name!r} twice: names must be unique.")
        seen.add(photo_name)
        width, height = entry.get("width"), entry.get("height")
        if not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 65535 for v in (width, height)):
            raise CollectionError(f"{where} ({photo_name}) has no valid width and height.")
        paths = {
            key: _text(entry.get(key), f"{where}'s {key}", optional=True) for key in ("bundle", "preview", "photo")
        }
        for key, path in paths.items():
            if path is not None and (path.startswith(("/", "\\")) or ":" in path or "\\" in path):
                raise CollectionError(
                    f"{where}'s {key} {path!r} must be a path relative to {what} (e.g. {photo_name}.msgpack), "
                    "not an address: the page reads only its own site."
                )
        if paths["bundle"] is not None and paths["preview"] is None and paths["photo"] is None:
            raise CollectionError(f"{where} ({photo_name}) has a bundle but neither a preview nor the photo to show.")
        if paths["bundle"] is None and paths["photo"] is None:
            raise CollectionError(f"{where} ({photo_name}) has neither a bundle nor the photo to encode.")
        sha256 = entry.get("sha256")
        if sha256 is not None and (not isinstance(sha256, str) or len(sha256) != 64):
            raise CollectionError(f"{where} ({photo_name})'s sha256 is not 64 hex digits.")
        photos.append(Photo(photo_name, width, height, sha256, paths["bundle"], paths["preview"], paths["photo"]))
    return Collection(name, model, photos, classes)


PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif")
BUNDLE_SUFFIX = ".msgpack"


def folder_index(name: str, files: Mapping[str, Mapping], model: str | None = None) -> Collection:
    """A folder opened in the page without a collection.json, as a collection: what samtab-encode --out
    writes (PHOTO.msgpack and PHOTO.preview.jpg|png) beside or without the photos themselves.

    `files`: every file of the folder by its path in it, with {"header": the first bundle.HEADER_BYTES bytes}
    for a bundle and {"width", "height"} (measured by the page, upright) for a photo without one. A photo with
    a bundle is shown by its preview (else the photo); one without is listed as needing encoding. `model`: the
    model for a folder without any bundle (the page's). Damaged bundles and bundles of two models are refused
    with their names."""
    name = _text(name, "the folder's name") or "collection"
    bundle_of = {path[: -len(BUNDLE_SUFFIX)]: path for path in files if path.lower().endswith(BUNDLE_SUFFIX)}
    previews = {}
    for path in files:
        base, _, suffix = path.rpartition(".preview.")
        if base and f".{suffix.lower()}" in PHOTO_SUFFIXES:
            previews[base] = path
    photo_files = [
        path for path in files if path.lower().endswith(PHOTO_SUFFIXES) and ".preview." not in path.rpartition("/")[2]
    ]
    keys = sorted(set(bundle_of) | set(photo_files), key=lambda key: (key.count("/"), key.lower()))
    if not keys:
        raise CollectionError(
            f"The folder {name!r} holds no photos and no bundles. Choose a folder of photos, or the --out folder "
            "of samtab-encode (its PHOTO.msgpack files)."
        )
    models: dict[str, list[str]] = {}
    photos, damaged = [], []
    for key in keys:
        photo_path = key if key in files and key.lower().endswith(PHOTO_SUFFIXES) else None
        if key in bundle_of:
            try:
                header = bundles.read_header(files[bundle_of[key]].get("header") or b"")
            except bundles.BundleError as error:
                damaged.append(f"{bundle_of[key]} ({error})")
                continue
            models.setdefault(header["model"], []).append(bundle_of[key])
            photos.append(
                Photo(
                    key,
                    header["width"],
                    header["height"],
                    header["sha256"],
                    bundle_of[key],
                    previews.get(key),
                    photo_path,
                )
            )
        else:
            size = files[key]
            width, height = size.get("width"), size.get("height")
            if not all(isinstance(v, int) and 0 < v <= 65535 for v in (width, height)):
                damaged.append(f"{key} (the page could not read it as an image)")
                continue
            photos.append(Photo(key, width, height, None, None, None, photo_path))
    if damaged:
        shown = "; ".join(damaged[:3]) + (f"; and {len(damaged) - 3} more" if len(damaged) > 3 else "")
        raise CollectionError(
            f"{len(damaged)} file{'s' if len(damaged) > 1 else ''} of the folder {name!r} cannot be used: {shown}. "
            "Remove them from the folder, or encode those photos again (samtab-encode PHOTOS --out FOLDER --force)."
        )
    if len(models) > 1:
        counts = ", ".join(f"{m!r} ({len(paths)}, e.g. {paths[0]})" for m, paths in models.items())
        raise CollectionError(
            f"The folder {name!r} holds bundles of {len(models)} models: {counts}. A collection is labelled with "
            "one model: open the bundles of one model, or encode the others again with it."
        )
    chosen = next(iter(models), model)
    if not chosen:
        raise CollectionError(f"The folder {name!r} has no bundle to say its model, and the page has no model.")
    return Collection(name, chosen, photos)


def read_session(data: bytes | str | Mapping, collection: Collection, what: str = "the session file") -> Session:
    """A session saved from this collection, checked against it: one from another collection or model, or
    whose photos are not this collection's, is refused (CollectionError)."""
    document = _json(data, what)
    _kind(document, SESSION_KIND, what, "Open a file saved with Save session.")
    model = document.get("model")
    if model != collection.model:
        raise CollectionError(
            f"{what} was made with the model {model!r}, this collection's bundles with {collection.model!r}: "
            "its masks would not be the same. Open it with its own collection."
        )
    photos = document.get("photos")
    if not isinstance(photos, dict):
        raise CollectionError(f"{what} has no photos.")
    known = {p.name: p for p in collection.photos}
    strangers = [name for name in photos if name not in known]
    if strangers and len(strangers) == len(photos):
        raise CollectionError(
            f"{what} is from another collection ({document.get('collection')!r}): none of its photos "
            f"({', '.join(list(photos)[:3])}) is in {collection.name!r}."
        )
    if strangers:
        raise CollectionError(
            f"{what}'s photos {', '.join(strangers[:3])} are not in {collection.name!r}: it is from another "
            "collection, or photos were removed from this one. Open it with the collection it was saved from."
        )
    classes = check_classes(document.get("classes", []), what)
    work: dict[str, PhotoWork] = {}
    for name, entry in photos.items():
        photo = known[name]
        where = f"{what}'s photo {name!r}"
        if not isinstance(entry, dict):
            raise CollectionError(f"{where} is not an object.")
        sha256 = entry.get("sha256")
        if sha256 is not None and photo.sha256 is not None and sha256 != photo.sha256:
            raise CollectionError(
                f"{where} is not this collection's {name}: the photo was changed since the session was saved "
                "(another sha256). Its work cannot be put on another photo."
            )
        status = entry.get("status", "in progress")
        if status not in STATUSES:
            raise CollectionError(f"{where}'s status {status!r} is not one of {', '.join(STATUSES)}.")
        log = entry.get("log", [])
        if not isinstance(log, list):
            raise CollectionError(f"{where}'s log is not a list.")
        objects = [
            _labelled(o, f"{where}'s object {i + 1}", photo, classes) for i, o in enumerate(entry.get("objects", []))
        ]
        work[name] = PhotoWork(sha256, status, log, objects)
    current = document.get("current")
    return Session(collection.name, model, classes, work, current if current in known else None)


def _labelled(entry, where: str, photo: Photo, classes: list[str]) -> Labelled:
    if not isinstance(entry, dict):
        raise CollectionError(f"{where} is not an object.")
    name = _text(entry.get("name"), f"{where}'s name")
    label = _text(entry.get("class"), f"{where}'s class", optional=True)
    if label is not None and label not in classes:
        raise CollectionError(f"{where}'s class {label!r} is not in the session's class list.")
    mask = entry.get("mask")
    if not isinstance(mask, dict) or not isinstance(mask.get("counts"), str):
        raise CollectionError(f"{where} has no mask (COCO RLE: size and counts).")
    if mask.get("size") != [photo.height, photo.width]:
        raise CollectionError(f"{where}'s mask is {mask.get('size')}, not the photo's {[photo.height, photo.width]}.")
    try:
        total = sum(rle_counts(mask["counts"]))
    except ValueError as error:
        raise CollectionError(f"{where}'s mask is damaged: {error}.") from None
    if total != photo.height * photo.width:
        raise CollectionError(f"{where}'s mask covers {total} pixels, not the photo's {photo.height * photo.width}.")
    return Labelled(name, label, (photo.height, photo.width), mask["counts"])


# -- COCO's compressed RLE, read back --------------------------------------------------------------------------


def rle_counts(text: str) -> list[int]:
    """The run lengths in COCO's compressed RLE string (the inverse of export.rle_string)."""
    counts: list[int] = []
    position = 0
    while position < len(text):
        value, shift, more = 0, 0, True
        while more:
            if position >= len(text):
                raise ValueError("the RLE string ends inside a number")
            chunk = ord(text[position]) - 48
            if not 0 <= chunk < 64:
                raise ValueError(f"{text[position]!r} is not an RLE character")
            position += 1
            value |= (chunk & 0x1F) << shift
            more = bool(chunk & 0x20)
            shift += 5
            if not more and chunk & 0x10:
                value |= -1 << shift
        if len(counts) > 2:
            value += counts[-2]
        if value < 0:
            raise ValueError("a negative run length")
        counts.append(value)
    return counts


def mask_from_rle(text: str, height: int, width: int) -> np.ndarray:
    """(height, width) bool mask of a compressed RLE string (column-major runs, zeros first)."""
    counts = np.asarray(rle_counts(text), dtype=np.intp)  # (np.repeat takes intp: 32 bits in Pyodide)
    if counts.sum() != height * width:
        raise ValueError(f"the RLE covers {int(counts.sum())} pixels, not {height}×{width}")
    values = np.zeros(len(counts), dtype=bool)
    values[1::2] = True
    flat = np.repeat(values, counts)
    return flat.reshape((width, height)).T


# -- exports of the whole collection ---------------------------------------------------------------------------


def categories(classes: Sequence[str], work: Mapping[str, PhotoWork]) -> list[str]:
    """The exports' categories: the class list, in its order, then (for objects given no class) each distinct
    object name, as the one-photo exports name them."""
    names = list(classes)
    for photo_work in work.values():
        for obj in photo_work.objects:
            category = obj.label or obj.name
            if category not in names:
                names.append(category)
    return names


def _labelled_photos(collection: Collection, session: Session) -> list[tuple[int, Photo, PhotoWork]]:
    """(image id, photo, work) for every photo of the collection with objects, in the collection's order."""
    return [
        (index + 1, photo, session.photos[photo.name])
        for index, photo in enumerate(collection.photos)
        if photo.name in session.photos and session.photos[photo.name].objects
    ]


def finish(steps: Iterator[int]):
    """Run an export's steps (each yields after a photo: the worker answers the page between them) and give
    its result."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


def coco(collection: Collection, session: Session, *, polygon_tolerance: float | None = None) -> dict:
    """One COCO document for the whole collection: every photo in `images` (ids in the collection's order, so
    that two exports agree), a category per class (then per unclassified object name), an annotation per
    object: compressed RLE, or polygons within `polygon_tolerance` pixels where they keep the area."""
    return finish(coco_steps(collection, session, polygon_tolerance=polygon_tolerance))


def coco_steps(
    collection: Collection, session: Session, *, polygon_tolerance: float | None = None
) -> Generator[int, None, dict]:
    """coco(), a photo at a time: yields the photos done so far, returns the document."""
    names = categories(session.classes, session.photos)
    annotations = []
    for done, (image_id, _photo, work) in enumerate(_labelled_photos(collection, session)):
        yield done
        for obj in work.objects:
            mask = obj.mask()
            if polygon_tolerance is None:
                segmentation = {"size": list(obj.size), "counts": obj.counts}
            else:
                segmentation = export.segmentation(mask, polygon_tolerance)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": names.index(obj.label or obj.name) + 1,
                    "segmentation": segmentation,
                    "area": int(np.count_nonzero(mask)),
                    "bbox": export.bbox(mask),
                    "iscrowd": 0,
                    "attributes": {"name": obj.name},
                }
            )
    return {
        "info": {
            "description": f"{collection.name}: masks made with samtab (Segment Anything 2 in a browser tab)",
            "model": collection.model,
        },
        "images": [
            {"id": i + 1, "file_name": p.name, "width": p.width, "height": p.height}
            for i, p in enumerate(collection.photos)
        ],
        "categories": [{"id": i + 1, "name": name} for i, name in enumerate(names)],
        "annotations": annotations,
    }


def yolo(collection: Collection, session: Session, *, tolerance: float = 1.0) -> dict[str, str]:
    """A YOLO segmentation dataset's text files (see yolo_steps)."""
    return finish(yolo_steps(collection, session, tolerance=tolerance))


def yolo_steps(
    collection: Collection, session: Session, *, tolerance: float = 1.0
) -> Generator[int, None, dict[str, str]]:
    """A YOLO segmentation dataset's text files: `labels/STEM.txt` for every photo of the collection (empty for
    a photo without objects: a YOLO background image), and `data.yaml` naming the classes. Each photo's image
    goes in `images/` as STEM plus its own suffix (see `stems`; yolo_zip adds them)."""
    names = categories(session.classes, session.photos)
    files: dict[str, str] = {}
    stems_of = stems(collection)
    for done, photo in enumerate(collection.photos):
        yield done
        work = session.photos.get(photo.name)
        lines = []
        for obj in work.objects if work else ():
            line = export.yolo_line(obj.mask(), names.index(obj.label or obj.name), tolerance)
            if line:
                lines.append(line)
        files[f"labels/{stems_of[photo.name]}.txt"] = "".join(line + "\n" for line in lines)
    files["data.yaml"] = data_yaml(collection.name, names)
    return files


def stem(name: str) -> str:
    return name.rsplit(".", 1)[0] if "." in name.strip(".") else name


def stems(collection: Collection) -> dict[str, str]:
    """Each photo's file stem in a YOLO dataset (YOLO pairs images/STEM.jpg with labels/STEM.txt): its name
    without the suffix, or its whole name where two photos share a stem (a.jpg and a.png)."""
    counts: dict[str, int] = {}
    for photo in collection.photos:
        counts[stem(photo.name)] = counts.get(stem(photo.name), 0) + 1
    return {p.name: stem(p.name) if counts[stem(p.name)] == 1 else p.name for p in collection.photos}


IMAGE_SUFFIXES = {b"\xff\xd8\xff": ".jpg", b"\x89PNG": ".png"}


def yolo_zip(
    collection: Collection, session: Session, *, tolerance: float = 1.0, images: Mapping[str, bytes] | None = None
) -> bytes:
    """The YOLO dataset as a zip: `images/` (the given images by photo name, e.g. the previews the page shows:
    YOLO's coordinates are fractions of the image, so a smaller copy of the photo fits its labels), `labels/`
    and `data.yaml`."""
    return finish(yolo_zip_steps(collection, session, tolerance=tolerance, images=images))


def yolo_zip_steps(
    collection: Collection, session: Session, *, tolerance: float = 1.0, images: Mapping[str, bytes] | None = None
) -> Generator[int, None, bytes]:
    """yolo_zip(), a photo at a time."""
    import io
    import zipfile

    files = yield from yolo_steps(collection, session, tolerance=tolerance)
    stems_of = stems(collection)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in (images or {}).items():
            if name not in stems_of:
                raise CollectionError(f"the image {name!r} is not a photo of {collection.name!r}")
            data = bytes(data)
            suffix = next((s for magic, s in IMAGE_SUFFIXES.items() if data.startswith(magic)), None)
            if suffix is None:
                raise CollectionError(f"the image of {name!r} is neither a JPEG nor a PNG")
            archive.writestr(zipfile.ZipInfo(f"images/{stems_of[name]}{suffix}"), data, zipfile.ZIP_STORED)
        for path, text in files.items():
            archive.writestr(path, text)
        archive.comment = f"samtab; {collection.name}; model: {collection.model}".encode()[:65535]
    return out.getvalue()


def data_yaml(title: str, names: Sequence[str]) -> str:
    """Ultralytics' dataset file: the folder, the images (all of them for training and validation alike: split
    them as you need), and the class names by index. Names are JSON strings, which YAML reads as they are."""
    lines = [
        f"# {title}: exported by samtab",
        "path: .",
        "train: images",
        "val: images",
        f"nc: {len(names)}",
        "names:",
        *(f"  {i}: {json.dumps(name, ensure_ascii=False)}" for i, name in enumerate(names)),
    ]
    return "\n".join(lines) + "\n"
