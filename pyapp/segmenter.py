"""One photo being segmented: its embeddings, its objects, and the loop prompt → feeds → decoder → masks.

The decoder itself is not called here: `feeds()` gives its inputs and `accept()` takes its outputs, so the
same code drives onnxruntime in CPython (pyapp.runner.OnnxRuntimeRunner, tools/segment.py, the tests) and
onnxruntime-web in the browser (pyapp.web), where the run is asynchronous.
"""

from __future__ import annotations

import numpy as np

from .bundle import Bundle
from .coords import Mapping
from .feeds import decoder_feeds
from .postprocess import Candidates
from .prompt import Objects, SegObject, Step


class Segmenter:
    def __init__(self, bundle: Bundle, model_name: str, input_names: list[str], *, image_sha256: str | None = None):
        """Refuses (BundleError) a bundle made by another model or, when image_sha256 is given, for
        another photo. Expands the embeddings to float32 once, here."""
        bundle.check_fits(model_name, image_sha256=image_sha256)
        self.bundle = bundle
        self.model_name = model_name
        self.input_names = list(input_names)
        self.embeddings = bundle.embeddings()
        self.mapping = Mapping.for_image(bundle.width, bundle.height)
        self.objects = Objects()

    @property
    def width(self) -> int:
        return self.bundle.width

    @property
    def height(self) -> int:
        return self.bundle.height

    def feeds(self, step: Step) -> dict[str, np.ndarray]:
        """The decoder's inputs for a step's prompt, refining the mask of the step it was made from."""
        return decoder_feeds(self.input_names, self.embeddings, step.prompt, self.mapping, step.mask_input)

    def mask(self, obj: SegObject, width: int | None = None, height: int | None = None) -> np.ndarray | None:
        """The object's shown mask at (width, height) (default: the photo's size); None before decoding."""
        return obj.current.mask(width or self.width, height or self.height)

    def decode(self, obj: SegObject, runner) -> Candidates:
        """feeds → runner.run → record, for the object's current step and a synchronous runner (CPython)."""
        return record(obj.current, runner.run(self.feeds(obj.current)))


def record(step: Step, outputs: dict[str, np.ndarray]) -> Candidates:
    """Keep the decoder's answer on the step it was asked for; the best-scored candidate is shown. The step
    it refined is let go: its mask was fed in, and undo keeps what it needs by itself."""
    candidates = Candidates.from_outputs(outputs)
    step.candidates = candidates
    step.chosen = candidates.best
    step.previous = None
    return candidates
