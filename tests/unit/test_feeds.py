"""pyapp.feeds: the decoder's inputs, matched by name, the embeddings reused."""

from __future__ import annotations

import numpy as np
import pytest

from pyapp import contract, feeds
from pyapp.coords import Mapping
from pyapp.prompt import Point, Prompt

NAMES = list(contract.DECODER_INPUTS)


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
