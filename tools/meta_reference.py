"""Meta's SAM2 image-predictor path, re-created without torchvision: the reference samtab is held to.

`sam2.sam2_image_predictor.SAM2ImagePredictor` and `sam2.utils.transforms.SAM2Transforms` import
torchvision, which fails to import beside torch 2.13 (shared SAM2.md). This module repeats what they do,
step by step, on Meta's own model (`sam2.build_sam.build_sam2`, e.g. via tools/export_sam2.build_model),
so that tests, benchmarks and docs can compare samtab's ONNX pipeline with Meta's:

    reference = MetaPredictor(model)
    reference.set_image(rgb)              # (H, W, 3) uint8, upright (EXIF orientation already applied)
    masks, scores, low_res = reference.predict(point_coords, point_labels, box, mask_input,
                                               multimask_output=True, return_logits=False)

It mirrors sam2 1.1.0 (the version samtab pins):

- `SAM2Transforms.__call__`: ToTensor (HWC uint8 -> CHW float32 / 255), then `Resize((1024, 1024))` -- which
  for a tensor is torchvision's `F.resize(..., BILINEAR, antialias=True)`, i.e.
  `F.interpolate(x, (1024, 1024), mode="bilinear", align_corners=False, antialias=True)` -- then
  `Normalize(mean, std)`: (x - mean) / std. The photo is STRETCHED, no aspect kept, no padding.
- `set_image`: `model.forward_image` -> `model._prepare_backbone_features` -> `no_mem_embed` added to the
  lowest-resolution level (when `model.directly_add_no_mem_embed`, true for SAM2.1) -> the three levels
  reshaped to (1, C, H, W): image_embed (1, 256, 64, 64) and high_res_feats (1, 32, 256, 256),
  (1, 64, 128, 128). (`forward_image` already applies the mask decoder's conv_s0/conv_s1.)
- `_prep_prompts` with normalize_coords=True: points and the box's two corners become x / W * 1024,
  y / H * 1024 (`transform_coords`); labels int; mask_input (1, 256, 256) -> (1, 1, 256, 256).
- `_predict`: a box becomes two points with labels 2 and 3 placed BEFORE the clicks, and the prompt encoder
  is called with `points=(coords, labels), boxes=None, masks=mask_input or None`. Since boxes is None, the
  prompt encoder's `_embed_points(pad=True)` always appends the padding point (0, 0) with label -1 and adds
  0.5 to every coordinate -- with or without a box. (Only a direct `sam_prompt_encoder(boxes=...)` call,
  which neither Meta predictor makes, skips the padding point.) Then `sam_mask_decoder(...,
  multimask_output, repeat_image=False for one prompt, high_res_features)`.
- `postprocess_masks` with max_hole_area = max_sprinkle_area = 0 (the predictor's defaults): bilinear
  upsampling of the UNCLAMPED low-res logits to (H, W), align_corners=False; then `> mask_threshold` (0)
  unless return_logits. Only the returned low-res logits are clamped to [-32, 32] -- after the upsampling.
  (samtab's decoder clamps in-graph and samtab upsamples the clamped logits: identical wherever the logits
  stay within +-32; see `upsample_logits(..., clamp=True)` to reproduce samtab's order on Meta's side.)

Needs torch and Meta's sam2 (`bash tools/setup.sh --test` or `--export`); never torchvision.
"""

from __future__ import annotations

import numpy as np

IMAGE_SIZE = 1024
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
BACKBONE_FEATURE_SIZES = ((256, 256), (128, 128), (64, 64))  # SAM2ImagePredictor._bb_feat_sizes
MASK_THRESHOLD = 0.0
LOGIT_CLAMP = 32.0


def _torch():
    import torch

    return torch


def preprocess(rgb: np.ndarray):
    """SAM2Transforms.__call__ on an (H, W, 3) uint8 RGB array: the (1, 3, 1024, 1024) float32 tensor Meta's
    image encoder gets (ToTensor, torchvision Resize((1024, 1024)) on a tensor, Normalize)."""
    torch = _torch()
    import torch.nn.functional as F

    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB array, not {rgb.dtype} {rgb.shape}")
    # ToTensor: HWC uint8 -> CHW float32 in [0, 1] (img.permute(2, 0, 1).float().div(255)).
    x = torch.from_numpy(np.array(rgb, copy=True)).permute(2, 0, 1).contiguous().to(torch.float32).div(255)
    # torchvision.transforms.Resize((1024, 1024)) on a float tensor (antialias=True, its default since 0.17):
    # torchvision's _functional_tensor.resize adds a batch dimension and calls F.interpolate like this.
    x = F.interpolate(x[None], size=[IMAGE_SIZE, IMAGE_SIZE], mode="bilinear", align_corners=False, antialias=True)[0]
    # Normalize(mean, std): tensor.sub_(mean).div_(std) with float32 mean and std of shape (3, 1, 1).
    mean = torch.as_tensor(MEAN, dtype=x.dtype)[:, None, None]
    std = torch.as_tensor(STD, dtype=x.dtype)[:, None, None]
    return x.sub_(mean).div_(std)[None]


def upsample_logits(low_res, height: int, width: int, clamp: bool = False):
    """postprocess_masks' resize of (..., h, w) logits: bilinear, align_corners=False, to (height, width).
    Meta upsamples the unclamped logits (clamp=False); clamp=True clamps to +-32 first, as samtab's decoder
    output is."""
    torch = _torch()
    import torch.nn.functional as F

    low_res = torch.as_tensor(low_res, dtype=torch.float32)
    if clamp:
        low_res = torch.clamp(low_res, -LOGIT_CLAMP, LOGIT_CLAMP)
    lead = tuple(low_res.shape[:-2])  # any leading dimensions: each (h, w) plane is resized on its own
    planes = low_res.reshape(-1, 1, *low_res.shape[-2:])
    masks = F.interpolate(planes, (height, width), mode="bilinear", align_corners=False)
    return masks.reshape(*lead, height, width)


class MetaPredictor:
    """SAM2ImagePredictor's single-image path (set_image, predict) on Meta's model, without torchvision."""

    def __init__(self, model, mask_threshold: float = MASK_THRESHOLD):
        self.model = model
        self.mask_threshold = mask_threshold
        self.features: dict | None = None
        self.orig_hw: tuple[int, int] | None = None

    # --- set_image --------------------------------------------------------------------------------------------

    def set_image(self, rgb: np.ndarray) -> None:
        """Embed an upright (H, W, 3) uint8 RGB photo, as SAM2ImagePredictor.set_image does."""
        self.set_input(preprocess(rgb), (int(rgb.shape[0]), int(rgb.shape[1])))

    def set_input(self, input_image, orig_hw: tuple[int, int]) -> None:
        """set_image from an already preprocessed (1, 3, 1024, 1024) tensor (or array)."""
        torch = _torch()
        model = self.model
        input_image = torch.as_tensor(input_image, dtype=torch.float32)
        if tuple(input_image.shape) != (1, 3, IMAGE_SIZE, IMAGE_SIZE):
            raise ValueError(f"input_image must be (1, 3, {IMAGE_SIZE}, {IMAGE_SIZE}), got {tuple(input_image.shape)}")
        with torch.no_grad():
            backbone_out = model.forward_image(input_image)
            _, vision_feats, _, _ = model._prepare_backbone_features(backbone_out)
            # Add no_mem_embed, which is added to the lowest-resolution feature map during training on videos.
            if model.directly_add_no_mem_embed:
                vision_feats[-1] = vision_feats[-1] + model.no_mem_embed
            feats = [
                feat.permute(1, 2, 0).view(1, -1, *feat_size)
                for feat, feat_size in zip(vision_feats[::-1], BACKBONE_FEATURE_SIZES[::-1])
            ][::-1]
        self.features = {"image_embed": feats[-1], "high_res_feats": feats[:-1]}
        self.orig_hw = orig_hw

    def set_features(self, embeddings: dict[str, np.ndarray], orig_hw: tuple[int, int]) -> None:
        """Use given encoder outputs (the contract's names: image_embed, high_res_feats_0, high_res_feats_1),
        e.g. samtab's, to compare the decoding paths alone."""
        torch = _torch()
        as_tensor = lambda name: torch.as_tensor(np.asarray(embeddings[name], dtype=np.float32))  # noqa: E731
        self.features = {
            "image_embed": as_tensor("image_embed"),
            "high_res_feats": [as_tensor("high_res_feats_0"), as_tensor("high_res_feats_1")],
        }
        self.orig_hw = orig_hw

    def embeddings(self) -> dict[str, np.ndarray]:
        """The features under the contract's names, as float32 numpy arrays."""
        if self.features is None:
            raise RuntimeError("set an image first")
        high_res_0, high_res_1 = self.features["high_res_feats"]
        return {
            "image_embed": self.features["image_embed"].numpy(),
            "high_res_feats_0": high_res_0.numpy(),
            "high_res_feats_1": high_res_1.numpy(),
        }

    # --- predict ----------------------------------------------------------------------------------------------

    def predict(
        self,
        point_coords=None,
        point_labels=None,
        box=None,
        mask_input=None,
        multimask_output: bool = True,
        return_logits: bool = False,
        normalize_coords: bool = True,
    ):
        """SAM2ImagePredictor.predict: (masks (C, H, W), iou_predictions (C,), low_res_logits (C, 256, 256)),
        numpy. Points (N, 2) and the box [x0, y0, x1, y1] are in the photo's pixels; mask_input is a previous
        answer's low-res logits, (1, 256, 256)."""
        torch = _torch()
        if self.features is None:
            raise RuntimeError("An image must be set with .set_image(...) before mask prediction.")
        with torch.no_grad():
            mask_input, coords, labels, box = self._prep_prompts(
                point_coords, point_labels, box, mask_input, normalize_coords
            )
            masks, iou_predictions, low_res_masks = self._predict(
                coords, labels, box, mask_input, multimask_output, return_logits
            )
        return (
            masks.squeeze(0).float().numpy(),
            iou_predictions.squeeze(0).float().numpy(),
            low_res_masks.squeeze(0).float().numpy(),
        )

    def prompt(self, point_coords=None, point_labels=None, box=None, normalize_coords: bool = True):
        """The points predict's arguments become, as its prompt encoder gets them (before the padding point):
        coords (1, N, 2) float32 in the 1024x1024 model space, box corners first, and labels (1, N) int32."""
        torch = _torch()
        if self.orig_hw is None:
            raise RuntimeError("set an image first: the coordinates are scaled by its size")
        with torch.no_grad():
            _, coords, labels, box = self._prep_prompts(point_coords, point_labels, box, None, normalize_coords)
            coords, labels = self.prompt_points(coords, labels, box)
        return coords.numpy(), labels.numpy()

    def _prep_prompts(self, point_coords, point_labels, box, mask_logits, normalize_coords):
        torch = _torch()
        unnorm_coords, labels, unnorm_box, mask_input = None, None, None, None
        if point_coords is not None:
            assert point_labels is not None, "point_labels must be supplied if point_coords is supplied."
            point_coords = torch.as_tensor(point_coords, dtype=torch.float)
            unnorm_coords = self.transform_coords(point_coords, normalize_coords)
            labels = torch.as_tensor(point_labels, dtype=torch.int)
            if len(unnorm_coords.shape) == 2:
                unnorm_coords, labels = unnorm_coords[None, ...], labels[None, ...]
        if box is not None:
            box = torch.as_tensor(box, dtype=torch.float)
            unnorm_box = self.transform_coords(box.reshape(-1, 2, 2), normalize_coords)  # Bx2x2
        if mask_logits is not None:
            mask_input = torch.as_tensor(mask_logits, dtype=torch.float)
            if len(mask_input.shape) == 3:
                mask_input = mask_input[None, :, :, :]
        return mask_input, unnorm_coords, labels, unnorm_box

    def transform_coords(self, coords, normalize: bool = True):
        """SAM2Transforms.transform_coords: photo pixels -> [0, 1] (x / W, y / H) -> x 1024."""
        if normalize:
            h, w = self.orig_hw
            coords = coords.clone()
            coords[..., 0] = coords[..., 0] / w
            coords[..., 1] = coords[..., 1] / h
        return coords * IMAGE_SIZE

    def prompt_points(self, point_coords, point_labels, boxes):
        """_predict's prompt: a box's two corners (labels 2, 3) concatenated BEFORE the points."""
        torch = _torch()
        concat_points = (point_coords, point_labels) if point_coords is not None else None
        if boxes is not None:
            box_coords = boxes.reshape(-1, 2, 2)
            box_labels = torch.tensor([[2, 3]], dtype=torch.int).repeat(boxes.size(0), 1)
            if concat_points is not None:
                concat_points = (
                    torch.cat([box_coords, concat_points[0]], dim=1),
                    torch.cat([box_labels, concat_points[1]], dim=1),
                )
            else:
                concat_points = (box_coords, box_labels)
        return concat_points

    def _predict(
        self, point_coords, point_labels, boxes=None, mask_input=None, multimask_output=True, return_logits=False
    ):
        model = self.model
        concat_points = self.prompt_points(point_coords, point_labels, boxes)
        # boxes=None: the prompt encoder pads the points with (0, 0, label -1), box or no box.
        sparse_embeddings, dense_embeddings = model.sam_prompt_encoder(
            points=concat_points, boxes=None, masks=mask_input
        )
        batched_mode = concat_points is not None and concat_points[0].shape[0] > 1  # multi-object prediction
        high_res_features = [feat_level[-1].unsqueeze(0) for feat_level in self.features["high_res_feats"]]
        low_res_masks, iou_predictions, _, _ = model.sam_mask_decoder(
            image_embeddings=self.features["image_embed"][-1].unsqueeze(0),
            image_pe=model.sam_prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse_embeddings,
            dense_prompt_embeddings=dense_embeddings,
            multimask_output=multimask_output,
            repeat_image=batched_mode,
            high_res_features=high_res_features,
        )
        # postprocess_masks (no hole or sprinkle filling): upsample the unclamped logits to the photo's size.
        masks = upsample_logits(low_res_masks.float(), *self.orig_hw)
        low_res_masks = _torch().clamp(low_res_masks, -LOGIT_CLAMP, LOGIT_CLAMP)
        if not return_logits:
            masks = masks > self.mask_threshold
        return masks, iou_predictions, low_res_masks
