"""Where is this pixel in the other space? The only module that maps coordinates.

Three spaces:
    display   CSS pixels of the element showing the whole photo (what pointer events give, relative to
              the element's box); the canvas's backing store is CSS size × device pixel ratio, which does
              not change where a CSS position falls on the photo
    image     pixels of the original photo (after EXIF orientation): (0, 0) is the CENTRE of the top-left
              pixel, as in Meta's predictor, whose prompt encoder adds the half pixel back
    model     SAM2's 1024 × 1024 input: the photo STRETCHED (x·1024/W, y·1024/H), no aspect kept, no padding

A position on the element is continuous: the top-left pixel spans [0, 1) × [0, 1) of image space before
the half-pixel shift. Points outside the photo are refused with OutsideImage.
"""

from __future__ import annotations

from dataclasses import dataclass

from .contract import IMAGE_SIZE


class OutsideImage(ValueError):
    """A point that does not lie on the photo."""


@dataclass(frozen=True)
class Mapping:
    """Maps between the display, the photo and SAM2's model space for one photo shown at one size."""

    width: int  # the photo, in pixels
    height: int
    display_width: float  # the element showing it, in CSS pixels (all of the photo, stretched to fit)
    display_height: float

    def __post_init__(self):
        if self.width < 1 or self.height < 1 or self.display_width <= 0 or self.display_height <= 0:
            raise ValueError(f"a mapping needs positive sizes, not {self}")

    @classmethod
    def for_image(cls, width: int, height: int) -> Mapping:
        """A mapping where the display is the photo itself (one CSS pixel per photo pixel)."""
        return cls(width, height, float(width), float(height))

    def display_to_image(self, x: float, y: float, *, inside: bool = True) -> tuple[float, float]:
        """A CSS position on the element → the photo's pixel coordinates (pixel centres are integers).
        Raises OutsideImage off the element, unless inside=False (a brush stroke may run past the edge)."""
        if inside and not (0 <= x < self.display_width and 0 <= y < self.display_height):
            raise OutsideImage(
                f"({x:g}, {y:g}) is outside the photo shown at {self.display_width:g}×{self.display_height:g}"
            )
        return x * self.width / self.display_width - 0.5, y * self.height / self.display_height - 0.5

    def image_to_display(self, x: float, y: float) -> tuple[float, float]:
        return (x + 0.5) * self.display_width / self.width, (y + 0.5) * self.display_height / self.height

    def check_image_point(self, x: float, y: float) -> None:
        if not (-0.5 <= x < self.width - 0.5 and -0.5 <= y < self.height - 0.5):
            raise OutsideImage(f"({x:g}, {y:g}) is outside the {self.width}×{self.height} photo")

    def image_to_model(self, x: float, y: float) -> tuple[float, float]:
        """Photo pixels → SAM2's 1024 space (Meta's transform_coords: x·1024/W, y·1024/H)."""
        self.check_image_point(x, y)
        return x * IMAGE_SIZE / self.width, y * IMAGE_SIZE / self.height

    def model_to_image(self, x: float, y: float) -> tuple[float, float]:
        return x * self.width / IMAGE_SIZE, y * self.height / IMAGE_SIZE


def device_to_css(x: float, y: float, device_pixel_ratio: float) -> tuple[float, float]:
    """Canvas backing-store pixels → CSS pixels (for events or drawing that work in device pixels)."""
    return x / device_pixel_ratio, y / device_pixel_ratio
