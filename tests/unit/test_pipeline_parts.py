"""The pure pipeline: coordinates, prompts, feeds, upsampling, compositing and exports."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from pyapp import composite, contract, export, feeds, postprocess
from pyapp.coords import Mapping, OutsideImage, device_to_css
from pyapp.prompt import Box, Objects, Point, Prompt


# --- coordinates -------------------------------------------------------------------------------------

def test_display_to_image_to_model_round_trip():
    mapping = Mapping(width=640, height=427, display_width=320.0, display_height=213.5)
    x, y = mapping.display_to_image(160.0, 100.0)
    assert (x, y) == pytest.approx((319.5, 199.5))
    assert mapping.image_to_display(x, y) == pytest.approx((160.0, 100.0))
    mx, my = mapping.image_to_model(x, y)
    assert (mx, my) == pytest.approx((x * 1024 / 640, y * 1024 / 427))  # a stretch, per axis
    assert mapping.model_to_image(mx, my) == pytest.approx((x, y))


def test_pixel_centres_are_integers():
    mapping = Mapping.for_image(10, 10)
    assert mapping.display_to_image(0.5, 0.5) == (0.0, 0.0)
    assert mapping.display_to_image(9.5, 3.5) == (9.0, 3.0)


@pytest.mark.parametrize("x, y", [(-0.01, 5), (5, -1), (100, 5), (5, 80), (100.0, 79.999)])
def test_points_outside_the_photo_are_refused(x, y):
    mapping = Mapping(width=200, height=160, display_width=100, display_height=80)
    with pytest.raises(OutsideImage):
        mapping.display_to_image(x, y)


def test_image_points_outside_are_refused_for_the_model():
    mapping = Mapping.for_image(100, 50)
    with pytest.raises(OutsideImage):
        mapping.image_to_model(100, 10)
    with pytest.raises(OutsideImage):
        mapping.image_to_model(10, -0.6)


def test_device_pixels_to_css():
    assert device_to_css(200, 100, 2.0) == (100, 50)


# --- prompts -----------------------------------------------------------------------------------------

def test_prompt_arrays_put_the_box_first_like_meta():
    mapping = Mapping.for_image(512, 256)
    prompt = Prompt().with_point(Point(10, 20)).with_point(Point(30, 40, include=False)).with_box(
        Box.from_corners(100, 200, 50, 60))
    coords, labels = prompt.model_arrays(mapping)
    assert coords.shape == (1, 4, 2) and coords.dtype == np.float32 and labels.dtype == np.float32
    np.testing.assert_array_equal(labels, [[2, 3, 1, 0]])
    np.testing.assert_allclose(coords[0], [[100, 240], [200, 800], [20, 80], [60, 160]])


def test_empty_prompt_is_refused():
    with pytest.raises(ValueError):
        Prompt().model_arrays(Mapping.for_image(10, 10))


def test_objects_new_select_rename_delete():
    objects = Objects()
    first, second = objects.new(), objects.new("Cup")
    assert objects.current is second and first.colour != second.colour
    objects.select(first.id)
    objects.rename(first.id, "  Saucer ")
    assert objects.current.name == "Saucer"
    with pytest.raises(ValueError):
        objects.rename(first.id, "   ")
    objects.delete(first.id)
    assert objects.current is second and [o.name for o in objects.items] == ["Cup"]
    with pytest.raises(KeyError):
        objects.get(first.id)


# --- feeds -------------------------------------------------------------------------------------------

NAMES = ["image_embed", "high_res_feats_0", "high_res_feats_1", "point_coords", "point_labels", "mask_input",
         "has_mask_input"]


@pytest.fixture(scope="module")
def embeddings():
    return {name: np.zeros(shape, np.float32) for name, shape in contract.EMBEDDING_SHAPES.items()}


def test_feeds_follow_the_models_input_names_and_reuse_the_embeddings(embeddings):
    mapping = Mapping.for_image(100, 100)
    names = list(reversed(NAMES))
    result = feeds.decoder_feeds(names, embeddings, Prompt((Point(5, 5),)), mapping)
    assert list(result) == names
    assert result["image_embed"] is embeddings["image_embed"]  # no copy per click
    assert result["has_mask_input"][0] == 0 and not result["mask_input"].any()
    previous = np.full((1, 1, 256, 256), 3.0, np.float32)
    refined = feeds.decoder_feeds(NAMES, embeddings, Prompt((Point(5, 5),)), mapping, previous)
    assert refined["has_mask_input"][0] == 1 and (refined["mask_input"] == 3).all()
    # A decoder without the mask inputs gets none.
    assert set(feeds.decoder_feeds(NAMES[:5], embeddings, Prompt((Point(5, 5),)), mapping)) == set(NAMES[:5])


def test_feeds_refuse_unknown_or_missing_inputs(embeddings):
    mapping = Mapping.for_image(100, 100)
    with pytest.raises(ValueError, match="orig_im_size"):
        feeds.decoder_feeds([*NAMES, "orig_im_size"], embeddings, Prompt((Point(5, 5),)), mapping)
    with pytest.raises(ValueError, match="point_labels"):
        feeds.decoder_feeds([n for n in NAMES if n != "point_labels"], embeddings, Prompt((Point(5, 5),)), mapping)


# --- upsampling --------------------------------------------------------------------------------------

def test_upsample_matches_pytorch_bilinear_align_corners_false():
    import torch  # installed by `bash tools/setup.sh --test` (the export dependencies)
    rng = np.random.default_rng(0)
    logits = (rng.standard_normal((3, 256, 256)) * 8).astype(np.float32)
    for width, height in ((1024, 683), (451, 300), (100, 77), (256, 256), (4000, 3)):
        ours = postprocess.upsample(logits, width, height)
        theirs = torch.nn.functional.interpolate(torch.from_numpy(logits)[None], size=(height, width),
                                                 mode="bilinear", align_corners=False)[0].numpy()
        assert ours.shape == (3, height, width)
        np.testing.assert_allclose(ours, theirs, atol=5e-4)  # float32 rounding of the weights
        assert ((ours > 0) != (theirs > 0)).mean() < 1e-4


def test_thresholding_logits_not_masks_gives_smooth_edges():
    # A diagonal edge in logits: upsampled logits give a staircase of 1-pixel steps, not 4-pixel blocks.
    yy, xx = np.mgrid[0:256, 0:256]
    logits = (xx - yy + 0.5).astype(np.float32)
    mask = postprocess.to_mask(logits, 1024, 1024)
    first_true = mask.argmax(axis=1)
    assert np.abs(np.diff(first_true[10:-10])).max() <= 1


def test_candidates_from_outputs_and_best():
    masks = np.zeros((1, 3, 256, 256), np.float32)
    candidates = postprocess.Candidates.from_outputs({"masks": masks, "iou_predictions": np.array([[0.2, 0.7, 0.5]])})
    assert candidates.best == 1 and candidates.low_res_logits.shape == (3, 256, 256)
    hires = postprocess.Candidates.from_outputs({"masks": np.zeros((1, 3, 512, 512), np.float32),
                                                 "iou_predictions": np.zeros((1, 3)), "low_res_masks": masks})
    assert hires.logits.shape == (3, 512, 512) and hires.low_res_logits.shape == (3, 256, 256)
    with pytest.raises(ValueError):
        postprocess.Candidates.from_outputs({"masks": np.zeros((3, 256, 256)), "iou_predictions": np.zeros(3)})


# --- compositing -------------------------------------------------------------------------------------

@pytest.fixture
def scene():
    photo = np.full((40, 60, 3), 100, np.uint8)
    mask = np.zeros((40, 60), bool)
    mask[10:30, 20:40] = True
    return photo, mask


def test_overlay_tints_inside_outlines_the_edge_and_leaves_the_rest(scene):
    photo, mask = scene
    out = composite.overlay(photo, [(mask, (255, 0, 0))], opacity=0.5)
    assert out.shape == (40, 60, 4) and (out[..., 3] == 255).all()
    assert tuple(out[20, 30, :3]) == (177, 50, 50)  # halfway to red
    assert tuple(out[10, 30, :3]) == (255, 0, 0)  # the outline
    assert tuple(out[0, 0, :3]) == (100, 100, 100)
    assert (composite.overlay(photo, [(mask, (255, 0, 0))], opacity=0, outline=False)[..., :3] == photo).all()


def test_cutout_and_erase_are_complements(scene):
    photo, mask = scene
    cut, erased = composite.cutout(photo, [mask]), composite.erase(photo, [mask])
    assert ((cut[..., 3] == 255) == mask).all() and ((erased[..., 3] == 255) == ~mask).all()
    assert (cut[..., :3] == photo).all()


def test_edges_of_a_square():
    mask = np.zeros((10, 10), bool)
    mask[2:8, 2:8] = True
    assert composite.edges(mask).sum() == 6 * 4 - 4


# --- exports -----------------------------------------------------------------------------------------

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
    document = export.coco([(f"thing {i % 2}", m) for i, m in enumerate(masks)], width=int(width),
                           height=int(height), file_name="photo.jpg")
    document = json.loads(json.dumps(document))
    assert [c["name"] for c in document["categories"]] == ["thing 0", "thing 1"]
    for annotation, mask in zip(document["annotations"], masks):
        decoded = coco_mask.decode({"size": annotation["segmentation"]["size"],
                                    "counts": annotation["segmentation"]["counts"].encode()})
        np.testing.assert_array_equal(decoded.astype(bool), mask)
        assert annotation["area"] == int(mask.sum())
        rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
        assert annotation["segmentation"]["counts"] == rle["counts"].decode()
        assert annotation["bbox"] == [int(v) for v in coco_mask.toBbox(rle)]
