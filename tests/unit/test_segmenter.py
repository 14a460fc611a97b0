"""pyapp.segmenter: one photo's embeddings and objects, and the loop prompt → feeds → decoder → masks."""

from __future__ import annotations

import numpy as np
import pytest

from pyapp import contract
from pyapp.bundle import BundleError, read_bundle, write_bundle
from pyapp.prompt import Point, Prompt
from pyapp.segmenter import Segmenter, record

NAMES = list(contract.DECODER_INPUTS)


def bundle(model="m", sha="ab" * 32):
    rng = np.random.default_rng(0)
    embeddings = {n: rng.standard_normal(s).astype(np.float32) for n, s in contract.EMBEDDING_SHAPES.items()}
    return read_bundle(write_bundle(embeddings, width=400, height=300, image_sha256=sha, model_name=model))


class Scores:
    """A decoder whose candidates are flat logits 1, 2, 3 scored 0.1, 0.9, 0.5."""

    def run(self, feeds):
        self.feeds = feeds
        logits = np.stack([np.full((256, 256), v, np.float32) for v in (1, 2, 3)])[None]
        return {"masks": logits, "iou_predictions": np.array([[0.1, 0.9, 0.5]], np.float32)}


def test_a_bundle_of_another_model_or_photo_is_refused():
    with pytest.raises(BundleError, match="made with the model 'm'"):
        Segmenter(bundle(), "other", NAMES)
    with pytest.raises(BundleError, match="different photo"):
        Segmenter(bundle(), "m", NAMES, image_sha256="cd" * 32)


def test_embeddings_are_expanded_once_and_reused_by_every_decode():
    segmenter = Segmenter(bundle(), "m", NAMES)
    obj = segmenter.objects.new()
    obj.push(Prompt((Point(10, 20),)))
    decoder = Scores()
    segmenter.decode(obj, decoder)
    first = decoder.feeds["image_embed"]
    obj.push(obj.prompt.with_point(Point(30, 40)))
    segmenter.decode(obj, decoder)
    assert decoder.feeds["image_embed"] is first and first.dtype == np.float32
    assert decoder.feeds["has_mask_input"][0] == 1 and (decoder.feeds["mask_input"] == 2).all()  # the best, fed back


def test_an_answer_is_kept_on_its_step_with_the_best_shown_and_the_step_before_let_go():
    segmenter = Segmenter(bundle(), "m", NAMES)
    obj = segmenter.objects.new()
    obj.push(Prompt((Point(10, 20),)))
    first = obj.current
    obj.push(obj.prompt.with_point(Point(30, 40)))
    assert obj.current.previous is first
    candidates = record(obj.current, Scores().run({}))
    assert obj.current.chosen == candidates.best == 1 and obj.current.previous is None
    mask = segmenter.mask(obj)
    assert mask.shape == (300, 400) and mask.all()  # logits 2 > 0 everywhere
