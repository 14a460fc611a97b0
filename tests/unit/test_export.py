"""pyapp.export: PNGs at the photo's size and COCO RLE that pycocotools reads."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from pyapp import composite, export


def test_mask_and_cutout_pngs_have_the_original_size(scene):
    photo, mask = scene
    read = Image.open(io.BytesIO(export.png(mask)))
    assert read.mode == "L" and read.size == (60, 40)
    assert (np.asarray(read) > 127).tolist() == mask.tolist()
    rgba = Image.open(io.BytesIO(export.png(composite.cutout(photo, [mask]))))
    assert rgba.mode == "RGBA" and rgba.size == (60, 40)


@pytest.mark.parametrize("seed", range(5))
def test_coco_rle_decodes_to_the_same_pixels_with_pycocotools(seed):
    from pycocotools import mask as coco_mask

    rng = np.random.default_rng(seed)
    height, width = rng.integers(1, 300, 2)
    masks = [rng.random((height, width)) > rng.random() for _ in range(3)]
    masks.append(np.ones((height, width), bool))
    masks.append(np.zeros((height, width), bool))
    document = export.coco(
        [(f"thing {i % 2}", m) for i, m in enumerate(masks)],
        width=int(width),
        height=int(height),
        file_name="photo.jpg",
    )
    document = json.loads(json.dumps(document))
    assert [c["name"] for c in document["categories"]] == ["thing 0", "thing 1"]
    for annotation, mask in zip(document["annotations"], masks):
        decoded = coco_mask.decode(
            {"size": annotation["segmentation"]["size"], "counts": annotation["segmentation"]["counts"].encode()}
        )
        np.testing.assert_array_equal(decoded.astype(bool), mask)
        assert annotation["area"] == int(mask.sum())
        rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
        assert annotation["segmentation"]["counts"] == rle["counts"].decode()
        assert annotation["bbox"] == [int(v) for v in coco_mask.toBbox(rle)]
