"""A collection's index, its session file and its whole exports (pyapp.collection), checked with pycocotools
and with a YOLO reader written here from the format's description (not from samtab's code)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from PIL import Image, ImageDraw
from pycocotools import mask as coco_mask
from pycocotools.coco import COCO

from pyapp import collection as col

MODEL = "sam2.1-tiny-random"


def shapes(rng: np.random.Generator, height: int, width: int, count: int) -> list[np.ndarray]:
    """Masks a person might make: ellipses, a rectangle with a hole, one object in two parts."""
    yy, xx = np.mgrid[:height, :width]
    masks = []
    for index in range(count):
        cy, cx = rng.uniform(0.25, 0.75) * height, rng.uniform(0.25, 0.75) * width
        ry, rx = rng.uniform(0.08, 0.2) * height, rng.uniform(0.08, 0.2) * width
        mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
        if index % 3 == 1:  # a hole
            mask &= ((yy - cy) / (ry / 3)) ** 2 + ((xx - cx) / (rx / 3)) ** 2 > 1
        if index % 3 == 2:  # a second part
            mask |= (yy < height // 8) & (xx > width - width // 6)
        masks.append(mask)
    return masks


def labelled_collection(photos: int = 6, seed: int = 0, classes=("cat", "dog", "car")):
    """A collection of `photos` photos (one needing encoding, one without objects) and a session labelling
    it: (collection, session, masks by photo name)."""
    rng = np.random.default_rng(seed)
    entries, work, truth = [], {}, {}
    for index in range(photos):
        width, height = int(rng.integers(120, 260)), int(rng.integers(90, 200))
        name = f"photo-{index:03d}.jpg"
        encoded = index != 1
        entries.append(
            col.Photo(
                name,
                width,
                height,
                f"{index:064x}",
                f"{name}.msgpack" if encoded else None,
                f"{name}.preview.jpg" if encoded else None,
                f"../photos/{name}",
            )
        )
        if index == 2:
            continue  # not started
        masks = shapes(rng, height, width, 1 + index % 4)
        objects = []
        for number, mask in enumerate(masks):
            label = classes[(index + number) % len(classes)] if number != 1 else None  # some without a class
            objects.append(col.Labelled.of(f"object {number + 1}", label, mask))
        truth[name] = masks
        work[name] = col.PhotoWork(
            f"{index:064x}", "done" if index % 2 else "in progress", [{"kind": "click"}], objects
        )
    collection = col.Collection("pets", MODEL, entries, list(classes))
    return collection, col.Session("pets", MODEL, list(classes), work, entries[0].name), truth


def test_rle_round_trips_through_pycocotools():
    rng = np.random.default_rng(3)
    for height, width in [(1, 1), (7, 5), (64, 48), (300, 17)]:
        for mask in [
            rng.random((height, width)) < 0.5,
            np.ones((height, width), bool),
            np.zeros((height, width), bool),
        ]:
            labelled = col.Labelled.of("x", None, mask)
            assert np.array_equal(labelled.mask(), mask)
            theirs = coco_mask.decode({"size": [height, width], "counts": labelled.counts.encode()})
            assert np.array_equal(theirs.astype(bool), mask)
            ours = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))["counts"].decode()
            assert np.array_equal(col.mask_from_rle(ours, height, width), mask)


def test_index_round_trip_and_its_messages():
    collection, _, _ = labelled_collection()
    text = json.dumps(collection.document())
    again = col.read_index(text)
    assert again == collection
    assert [p.encoded for p in again.photos] == [True, False, True, True, True, True]

    def refused(change, words):
        document = json.loads(text)
        change(document)
        with pytest.raises(col.CollectionError) as caught:
            col.read_index(json.dumps(document))
        for word in words:
            assert word in str(caught.value)

    refused(lambda d: d.update(kind="samtab-session"), ["not a samtab collection", "--index"])
    refused(lambda d: d.update(version=9), ["version 9", "Update samtab"])
    refused(lambda d: d.update(photos=[]), ["lists no photos"])
    refused(lambda d: d["photos"].append(dict(d["photos"][0])), ["photo-000.jpg", "twice"])
    refused(lambda d: d["photos"][0].update(bundle="/etc/passwd"), ["relative", "its own site"])
    refused(lambda d: d["photos"][0].update(bundle="https://elsewhere.example/x.msgpack"), ["relative"])
    refused(lambda d: d["photos"][1].update(photo=None), ["neither a bundle nor the photo"])
    refused(lambda d: d["photos"][3].update(width=0), ["photo-003.jpg", "width and height"])
    refused(lambda d: d.update(classes=["a", "b", "a"]), ["'a' twice"])
    with pytest.raises(col.CollectionError, match="not JSON"):
        col.read_index(b"\x89PNG")


def test_session_round_trip_and_refusals():
    collection, session, truth = labelled_collection()
    document = json.loads(json.dumps(session.document()))  # as a file would carry it
    again = col.read_session(document, collection)
    assert again.document() == session.document()
    assert again.status("photo-002.jpg") == "not started"
    assert again.status("photo-001.jpg") == "done"
    for name, masks in truth.items():
        assert all(np.array_equal(o.mask(), m) for o, m in zip(again.photos[name].objects, masks))

    def refused(change, words, target=collection):
        changed = json.loads(json.dumps(document))
        change(changed)
        with pytest.raises(col.CollectionError) as caught:
            col.read_session(changed, target)
        for word in words:
            assert word in str(caught.value)

    refused(lambda d: d.update(model="sam2.1-large"), ["sam2.1-large", MODEL, "its own collection"])
    other, _, _ = labelled_collection(seed=1)
    other = col.Collection("cars", MODEL, [col.Photo("street.jpg", 10, 10, None, "s.msgpack", "s.jpg")])
    refused(lambda d: None, ["another collection", "'cars'"], target=other)
    refused(lambda d: d["photos"]["photo-003.jpg"].update(sha256="f" * 64), ["photo-003.jpg", "changed"])
    refused(lambda d: d["photos"]["photo-003.jpg"]["objects"][0].update({"class": "horse"}), ["'horse'"])
    refused(lambda d: d["photos"]["photo-003.jpg"]["objects"][0]["mask"].update(counts="0"), ["covers"])
    refused(lambda d: d["photos"]["photo-003.jpg"].update(status="half"), ["half"])
    refused(lambda d: d.update(kind="samtab-collection"), ["Save session"])


def test_whole_collection_coco_reads_back_in_pycocotools():
    collection, session, truth = labelled_collection()
    for tolerance in (None, 0.5):
        document = json.loads(json.dumps(col.coco(collection, session, polygon_tolerance=tolerance)))
        api = COCO()
        api.dataset = document
        api.createIndex()
        assert [c["name"] for c in document["categories"]][:3] == ["cat", "dog", "car"]
        assert "object 2" in [c["name"] for c in document["categories"]]  # objects given no class
        assert len(api.getImgIds()) == len(collection.photos)  # photos without objects are images too
        for image in api.loadImgs(api.getImgIds()):
            photo = collection.photo(image["file_name"])
            assert (image["width"], image["height"]) == (photo.width, photo.height)
            annotations = api.loadAnns(api.getAnnIds(imgIds=image["id"]))
            masks = truth.get(photo.name, [])
            assert len(annotations) == len(masks)
            for annotation, mask, obj in zip(
                annotations, masks, session.photos.get(photo.name, col.PhotoWork(None)).objects
            ):
                theirs = api.annToMask(annotation).astype(bool)
                if tolerance is None:
                    assert np.array_equal(theirs, mask)
                else:
                    assert np.count_nonzero(theirs != mask) <= 0.01 * mask.sum() + 0.5
                category = api.loadCats(annotation["category_id"])[0]["name"]
                assert category == (obj.label or obj.name)
                assert annotation["area"] == mask.sum()
                assert annotation["attributes"]["name"] == obj.name
                x, y, w, h = annotation["bbox"]
                ys, xs = np.nonzero(mask)
                assert (x, y, x + w - 1, y + h - 1) == (xs.min(), ys.min(), xs.max(), ys.max())


def read_yolo(
    files: dict[str, str], width: int, height: int, stem: str
) -> tuple[list[str], list[tuple[str, np.ndarray]]]:
    """A YOLO segmentation reader after Ultralytics' description: data.yaml's names by index; a label file
    of lines `class x1 y1 x2 y2 ...`, coordinates normalised to the image; each polygon filled."""
    data = yaml.safe_load(files["data.yaml"])
    names = [data["names"][i] for i in range(data["nc"])]
    objects = []
    for line in files[f"labels/{stem}.txt"].splitlines():
        fields = line.split()
        values = np.array([float(v) for v in fields[1:]]).reshape(-1, 2) * [width, height]
        assert (0 <= values).all() and (values <= [width, height]).all()
        canvas = Image.new("1", (width, height))
        ImageDraw.Draw(canvas).polygon([tuple(p) for p in values - 0.5], fill=1)  # pixel centres at +0.5
        objects.append((names[int(fields[0])], np.array(canvas)))
    return names, objects


def test_whole_collection_yolo_reads_back():
    collection, session, truth = labelled_collection()
    files = col.yolo(collection, session)
    assert sorted(files) == ["data.yaml"] + [f"labels/photo-{i:03d}.txt" for i in range(6)]
    assert files["labels/photo-002.txt"] == ""  # a photo without objects: a background image
    for photo in collection.photos:
        names, objects = read_yolo(files, photo.width, photo.height, photo.name.removesuffix(".jpg"))
        assert names[:3] == ["cat", "dog", "car"]
        expected = session.photos[photo.name].objects if photo.name in session.photos else []
        assert len(objects) == len(expected)
        for (name, theirs), obj, mask in zip(objects, expected, truth.get(photo.name, [])):
            assert name == (obj.label or obj.name)
            iou = np.count_nonzero(theirs & mask) / np.count_nonzero(theirs | mask)
            assert iou > 0.9, (photo.name, name, iou)


def test_names_that_need_quoting_survive_data_yaml():
    collection, session, _ = labelled_collection(classes=("a: b", "#hash", "é ünïcode", "yes", "1"))
    names = yaml.safe_load(col.yolo(collection, session)["data.yaml"])["names"]
    assert [names[i] for i in range(5)] == ["a: b", "#hash", "é ünïcode", "yes", "1"]


def test_yolo_zip_holds_images_labels_and_data_yaml_and_keeps_stems_apart():
    import io
    import zipfile

    collection, session, _ = labelled_collection(photos=3)
    twin = col.Photo("photo-000.png", 50, 40, None, "t.msgpack", "t.png")  # the same stem as photo-000.jpg
    collection.photos.append(twin)
    jpeg, png = io.BytesIO(), io.BytesIO()
    Image.new("RGB", (8, 6)).save(jpeg, "JPEG")
    Image.new("RGB", (8, 6)).save(png, "PNG")
    images = {"photo-000.jpg": jpeg.getvalue(), "photo-000.png": png.getvalue(), "photo-001.jpg": jpeg.getvalue()}
    archive = zipfile.ZipFile(io.BytesIO(col.yolo_zip(collection, session, images=images)))
    names = sorted(archive.namelist())
    assert names == [
        "data.yaml",
        "images/photo-000.jpg.jpg",
        "images/photo-000.png.png",
        "images/photo-001.jpg",
        "labels/photo-000.jpg.txt",
        "labels/photo-000.png.txt",
        "labels/photo-001.txt",
        "labels/photo-002.txt",
    ]
    assert archive.read("images/photo-001.jpg") == jpeg.getvalue()
    assert archive.read("labels/photo-001.txt").decode() == col.yolo(collection, session)["labels/photo-001.txt"]
    with pytest.raises(col.CollectionError, match="not a photo of"):
        col.yolo_zip(collection, session, images={"stranger.jpg": jpeg.getvalue()})
    with pytest.raises(col.CollectionError, match="neither a JPEG nor a PNG"):
        col.yolo_zip(collection, session, images={"photo-001.jpg": b"GIF89a"})


def bundle_bytes(model: str, width: int, height: int, sha256: str) -> bytes:
    from pyapp import bundle, contract

    embeddings = {name: np.zeros(shape, np.float32) for name, shape in contract.EMBEDDING_SHAPES.items()}
    return bundle.write_bundle(embeddings, width=width, height=height, image_sha256=sha256, model_name=model)


def test_a_bundles_header_is_read_from_its_first_bytes_alone():
    from pyapp import bundle

    data = bundle_bytes(MODEL, 640, 480, "ab" * 32)
    expected = {"model": MODEL, "width": 640, "height": 480, "sha256": "ab" * 32}
    assert bundle.read_header(data[: bundle.HEADER_BYTES]) == expected
    assert bundle.read_header(memoryview(data)) == expected
    for damaged, words in [
        (b"", "not a samtab bundle"),
        (b"\xc1" * 64, "not a samtab bundle"),
        (json.dumps({"format": "x"}).encode(), "not a samtab bundle"),
        (data[:30], "cut short"),
        (bundle_bytes(MODEL, 5, 5, "1" * 64).replace(b"samtab-bundle", b"samtab-bundlx"), "not a bundle samtab-encode"),
    ]:
        with pytest.raises(bundle.BundleError, match=words):
            bundle.read_header(damaged)


def test_a_folder_without_an_index_is_a_collection_of_its_photos_and_bundles():
    """samtab-encode's --out folder (PHOTO.msgpack, PHOTO.preview.jpg), with some photos beside it: photos with
    a bundle take the bundle's size and sha256 and are shown by their preview; a photo without one needs
    encoding at the size the page measured."""
    files = {
        "b.jpg.msgpack": {"header": bundle_bytes(MODEL, 300, 200, "1" * 64)[:4096]},
        "b.jpg.preview.jpg": {},
        "a.png": {},
        "a.png.msgpack": {"header": bundle_bytes(MODEL, 64, 48, "2" * 64)[:4096]},
        "new.jpg": {"width": 40, "height": 30},
        "notes.txt": {},
        "sub/c.jpg": {"width": 10, "height": 20},
    }
    found = col.folder_index("holiday", files, model="other-model")
    assert found.name == "holiday" and found.model == MODEL and found.classes == []
    assert found.photos == [
        col.Photo("a.png", 64, 48, "2" * 64, "a.png.msgpack", None, "a.png"),
        col.Photo("b.jpg", 300, 200, "1" * 64, "b.jpg.msgpack", "b.jpg.preview.jpg", None),
        col.Photo("new.jpg", 40, 30, None, None, None, "new.jpg"),
        col.Photo("sub/c.jpg", 10, 20, None, None, None, "sub/c.jpg"),
    ]
    # what the worker answers is an index the page's later messages send back: it reads as one
    assert col.read_index(found.document()).photos == found.photos
    # photos alone take the page's model
    assert col.folder_index("f", {"x.jpg": {"width": 5, "height": 5}}, model="m").model == "m"


@pytest.mark.parametrize(
    "files, words",
    [
        ({}, ["holds no photos and no bundles", "--out folder"]),
        ({"notes.txt": {}}, ["holds no photos and no bundles"]),
        ({"a.jpg.msgpack": {"header": b"junk"}}, ["a.jpg.msgpack", "cannot be used", "--force"]),
        ({"a.jpg": {}}, ["a.jpg", "could not read it as an image"]),
        (
            {
                "a.jpg.msgpack": {"header": bundle_bytes("one", 5, 5, "1" * 64)[:4096]},
                "b.jpg.msgpack": {"header": bundle_bytes("two", 5, 5, "2" * 64)[:4096]},
            },
            ["2 models", "'one'", "'two'", "one model"],
        ),
    ],
)
def test_a_folder_that_cannot_be_a_collection_says_why(files, words):
    with pytest.raises(col.CollectionError) as caught:
        col.folder_index("f", files, model=None)
    for word in words:
        assert word in str(caught.value), caught.value
