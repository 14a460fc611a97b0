"""The SAM2 ONNX contract: what every encoder writes and every decoder reads (see shared SAM2.md).

Both the real SAM2.1 exports and samtab's built-in baseline model follow it exactly, so a bundle, the app
and the tools never need to know which model they hold beyond its name.
"""

from __future__ import annotations

CONTRACT = "sam2"

# The encoder's input: the photo STRETCHED (no aspect kept, no padding) to IMAGE_SIZE × IMAGE_SIZE, RGB in
# [0, 1], then ImageNet-normalised, as float32 (1, 3, 1024, 1024).
IMAGE_SIZE = 1024
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
ENCODER_INPUT = "image"

# The encoder's outputs, which a bundle carries for one photo (4,194,304 values).
EMBEDDING_SHAPES: dict[str, tuple[int, ...]] = {
    "image_embed": (1, 256, 64, 64),
    "high_res_feats_0": (1, 32, 256, 256),
    "high_res_feats_1": (1, 64, 128, 128),
}
EMBEDDING_VALUES = sum(shape[0] * shape[1] * shape[2] * shape[3] for shape in EMBEDDING_SHAPES.values())

# The decoder: embeddings plus a prompt, giving three candidate masks as low-resolution logits.
LOW_RES_MASK_SIZE = 256
HIRES_MASK_SIZE = 512
DECODER_PROMPT_INPUTS = ("point_coords", "point_labels", "mask_input", "has_mask_input")
DECODER_INPUTS = (*EMBEDDING_SHAPES, *DECODER_PROMPT_INPUTS)
DECODER_OUTPUTS = ("masks", "iou_predictions")
MASK_CANDIDATES = 3
# Point labels as the decoder reads them.
LABEL_PADDING, LABEL_EXCLUDE, LABEL_INCLUDE, LABEL_BOX_TOP_LEFT, LABEL_BOX_BOTTOM_RIGHT = -1, 0, 1, 2, 3

# The largest photo samtab opens, in pixels (width × height after EXIF orientation), in the tools, in the tab
# and in any bundle: 100 MP, as cameras up to 100 MP make (the 102 MP of medium-format backs must be scaled
# down). Past it a photo costs gigabytes in the encoder's resize (about 30 bytes a pixel) and in full-size
# masks, and a small file that declares more is a decompression bomb. In the tab, a 100 MP photo opened and
# exported (mask, cutout, COCO) took Pyodide's WebAssembly heap to 3.0 GB of the 4 GB it can have (measured
# in Chromium; 25 MP: 0.84 GB, 50 MP: 1.59 GB), so the tab needs no lower cap.
MAX_PHOTO_PIXELS = 100_000_000
