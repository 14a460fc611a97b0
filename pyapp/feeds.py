"""The decoder's inputs for one prompt: the photo's embeddings (float32, made once per photo and reused on
every click) plus the prompt's arrays. Input names are read from the model, never assumed."""

from __future__ import annotations

import numpy as np

from . import contract
from .coords import Mapping
from .prompt import Prompt

EMPTY_MASK = np.zeros((1, 1, contract.LOW_RES_MASK_SIZE, contract.LOW_RES_MASK_SIZE), dtype=np.float32)
NO_MASK = np.zeros((1,), dtype=np.float32)
HAS_MASK = np.ones((1,), dtype=np.float32)


def decoder_feeds(
    input_names: list[str],
    embeddings: dict[str, np.ndarray],
    prompt: Prompt,
    mapping: Mapping,
    mask_input: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Feeds for a decoder whose inputs are `input_names` (from its session or model.json).

    embeddings: float32 (pyapp.bundle.Bundle.embeddings()); passed through as they are, not copied.
    mask_input: the previous low-res logits (1, 1, 256, 256) to refine, or None.
    """
    coords, labels = prompt.model_arrays(mapping)
    values = {
        **embeddings,
        "point_coords": coords,
        "point_labels": labels,
        "mask_input": EMPTY_MASK if mask_input is None else np.asarray(mask_input, dtype=np.float32),
        "has_mask_input": NO_MASK if mask_input is None else HAS_MASK,
    }
    unknown = [name for name in input_names if name not in values]
    if unknown:
        raise ValueError(f"the decoder wants inputs samtab does not know: {', '.join(unknown)}")
    for name in ("point_coords", "point_labels", *contract.EMBEDDING_SHAPES):
        if name not in input_names:
            raise ValueError(f"the decoder has no input {name!r}: it does not follow the SAM2 contract")
    if values["mask_input"].shape != EMPTY_MASK.shape:
        raise ValueError(f"mask_input must be {list(EMPTY_MASK.shape)}, not {list(values['mask_input'].shape)}")
    return {name: values[name] for name in input_names}
