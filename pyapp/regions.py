"""Connected parts of a mask, and a mask made solid: its holes filled and its specks dropped.

Pure numpy (the worker has no scipy): a mask is read as runs of set pixels per row, runs of neighbouring rows
that touch are joined (a vectorised union-find: each run takes the smallest label among those it touches,
then labels follow their labels until nothing changes), and parts are painted back run by run. Parts of the
mask are 8-connected and parts of the background 4-connected, as in Meta's clean-up of small regions
(`sam2/utils/amg.py`, `remove_small_regions`, through OpenCV) and in scipy.ndimage's defaults for the two.
"""

from __future__ import annotations

import numpy as np

# A solid mask keeps the parts of at least this share of its largest part's area (specks go).
SOLID_ISLAND_SHARE = 0.02


def runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The mask's runs of set pixels: (rows, starts, ends), ends exclusive, in row-major order."""
    mask = np.asarray(mask, dtype=bool)
    height, width = mask.shape
    padded = np.zeros((height, width + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    change = np.diff(padded, axis=1)  # +1 where a run starts, -1 just past its end
    rows, starts = np.nonzero(change == 1)
    _, ends = np.nonzero(change == -1)
    return rows, starts, ends


def label(mask: np.ndarray, *, diagonal: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The connected parts of `mask` (8-connected with `diagonal`, else 4-connected), as runs:
    (rows, starts, ends, part), where part numbers the runs' parts 0..n-1."""
    rows, starts, ends = runs(mask)
    count = len(rows)
    if count == 0:
        return rows, starts, ends, np.zeros(0, dtype=np.int64)
    width = np.asarray(mask).shape[1] + 2
    reach = 1 if diagonal else 0
    # Runs as intervals on one line, each row after the one before: [row * width + start, row * width + end).
    first, last = rows * width + starts, rows * width + ends
    # For each run, the runs of the row above that touch it: they lie between lo and hi in row-major order.
    lo = np.searchsorted(last, first - width - reach, side="right")
    hi = np.searchsorted(first, last - width + reach, side="left")
    lo = np.maximum(lo, np.searchsorted(rows, rows - 1, side="left"))  # only the row just above
    hi = np.minimum(hi, np.searchsorted(rows, rows, side="left"))
    touching = np.maximum(hi - lo, 0)
    below = np.repeat(np.arange(count), touching)
    above = np.repeat(lo - np.cumsum(touching) + touching, touching) + np.arange(touching.sum())
    parent = np.arange(count)
    while True:
        smallest = np.minimum(parent[below], parent[above])
        before = parent.copy()
        np.minimum.at(parent, below, smallest)
        np.minimum.at(parent, above, smallest)
        parent = parent[parent]  # follow labels to their labels
        if np.array_equal(parent, before):
            break
    _, part = np.unique(parent, return_inverse=True)
    return rows, starts, ends, part


def paint(shape: tuple[int, int], rows: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """A (height, width) mask with these runs set."""
    height, width = shape
    flat = np.zeros(height * (width + 1) + 1, dtype=np.int32)
    np.add.at(flat, rows * (width + 1) + starts, 1)
    np.add.at(flat, rows * (width + 1) + ends, -1)
    return np.cumsum(flat[:-1]).reshape(height, width + 1)[:, :width] > 0


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """The mask with every hole filled: background parts (4-connected) that do not reach the mask's edge."""
    mask = np.asarray(mask, dtype=bool)
    height, width = mask.shape
    rows, starts, ends, part = label(~mask, diagonal=False)
    if len(part) == 0:
        return mask.copy()
    on_edge = (rows == 0) | (rows == height - 1) | (starts == 0) | (ends == width)
    outside = np.zeros(part.max() + 1, dtype=bool)
    outside[part[on_edge]] = True
    hole = ~outside[part]
    return mask | paint(mask.shape, rows[hole], starts[hole], ends[hole])


def drop_islands(mask: np.ndarray, share: float) -> np.ndarray:
    """The mask without its parts (8-connected) smaller than `share` of its largest part's area."""
    mask = np.asarray(mask, dtype=bool)
    rows, starts, ends, part = label(mask)
    if len(part) == 0:
        return mask.copy()
    areas = np.bincount(part, weights=ends - starts)
    keep = (areas >= share * areas.max())[part]
    return paint(mask.shape, rows[keep], starts[keep], ends[keep])


def solid(mask: np.ndarray, island_share: float = SOLID_ISLAND_SHARE) -> np.ndarray:
    """The mask as one solid subject: specks dropped, then every hole filled."""
    return fill_holes(drop_islands(mask, island_share))


def solid_logits(logits: np.ndarray, island_share: float = SOLID_ISLAND_SHARE) -> np.ndarray:
    """Logits whose mask (> 0) is solid(logits > 0): a filled hole's pixels are raised to +1 at least, a
    dropped speck's lowered to -1 at most; the rest (the edges a soft cutout fades) are unchanged."""
    inside = logits > 0
    wanted = solid(inside, island_share)
    out = logits.copy()
    out[wanted & ~inside] = np.maximum(out[wanted & ~inside], 1.0)
    out[inside & ~wanted] = np.minimum(out[inside & ~wanted], -1.0)
    return out


def solid_logits_at(
    logits: np.ndarray,
    whole: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    size: tuple[int, int],
    island_share: float = SOLID_ISLAND_SHARE,
) -> np.ndarray:
    """solid_logits for a part of a large picture: `logits` are those of its pixels at `rows` × `cols` (indices
    into a picture of `size`, (width, height)), `whole` the mask (logits > 0) of the whole picture at a smaller
    size. Parts and holes are a matter of the whole, so they are found in `whole`, each grown by one of its
    pixels (so that the larger picture's finer edge of a hole is covered), and carried to the part's pixels.
    Made for zoomed views of large photos: what is filled or dropped is what the smaller picture fills or drops."""
    wanted = solid(whole, island_share)
    filled, dropped = _grown(wanted & ~whole), _grown(whole & ~wanted)
    height, width = whole.shape
    at_rows = np.minimum(((rows + 0.5) * height / size[1]).astype(np.intp), height - 1)
    at_cols = np.minimum(((cols + 0.5) * width / size[0]).astype(np.intp), width - 1)
    filled, dropped = filled[at_rows][:, at_cols], dropped[at_rows][:, at_cols]
    out = np.array(logits, dtype=np.float32)
    out[filled] = np.maximum(out[filled], 1.0)
    out[dropped] = np.minimum(out[dropped], -1.0)
    return out


def _grown(mask: np.ndarray) -> np.ndarray:
    """The mask and its 8 neighbours' pixels."""
    out = mask.copy()
    out[1:] |= mask[:-1]
    out[:-1] |= mask[1:]
    rows = out.copy()
    out[:, 1:] |= rows[:, :-1]
    out[:, :-1] |= rows[:, 1:]
    return out
