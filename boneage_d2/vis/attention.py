"""Drawing Model A's attention maps (paper A Fig. 3) over the region the regressor saw."""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np
import torch

__all__ = ["crop_square", "draw_attention_maps", "overlay_heatmap"]

TEXT_COLOUR = (255, 255, 255)  # BGR


def _numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def crop_square(image: np.ndarray, box, size: int) -> np.ndarray:
    """Crop ``box`` (XYXY, pixels, may extend beyond the image: zero there) out of ``image``
    ([H, W] or [H, W, C]) and resize it to ``size`` x ``size`` (bilinear)."""
    x0, y0, x1, y1 = (float(v) for v in _numpy(box))
    sx, sy = size / max(x1 - x0, 1e-6), size / max(y1 - y0, 1e-6)
    # Pixel index i of the output has its centre at continuous x0 + (i + 0.5) / sx of the input,
    # i.e. input index x0 + (i + 0.5) / sx - 0.5; warpAffine takes the forward map (in -> out).
    affine = np.array([[sx, 0.0, 0.5 * (sx - 1) - x0 * sx], [0.0, sy, 0.5 * (sy - 1) - y0 * sy]])
    return cv2.warpAffine(
        image, affine, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )


def overlay_heatmap(image_bgr: np.ndarray, heat, alpha: float = 0.5) -> np.ndarray:
    """Blend a heatmap (any [h, w] array, min-max normalised, bilinearly resized to the image)
    in the JET colour map over a uint8 BGR image [S, S, 3]."""
    heat = _numpy(heat).astype(np.float32)
    lo, hi = float(heat.min()), float(heat.max())
    heat = (heat - lo) / (hi - lo) if hi > lo else np.zeros_like(heat)
    heat = cv2.resize(heat, image_bgr.shape[1::-1], interpolation=cv2.INTER_LINEAR)
    coloured = cv2.applyColorMap(np.uint8(255 * heat), cv2.COLORMAP_JET)
    return cv2.addWeighted(image_bgr, 1.0 - alpha, coloured, alpha, 0.0)


def draw_attention_maps(
    image: np.ndarray,
    maps: Mapping[str, torch.Tensor | np.ndarray],
    box=None,
    mask: np.ndarray | None = None,
    *,
    tile_size: int = 192,
    alpha: float = 0.5,
    title: str = "",
) -> np.ndarray:
    """One row of tiles: the regressor's view, then each attention map over it.

    Args:
        image: the original radiograph, [H, W] or [H, W, 3] uint8 (grayscale or BGR).
        maps: ``output["attention_maps"]`` of ``HandSegBoneAgeRCNN``: module name -> [h, w]
            pre-sigmoid soft mask (channel mean), each min-max normalised for display.
        box: ``output["attention_box"]`` (XYXY, original pixels), the square the maps cover;
            None = the whole image.
        mask: [H, W] hand mask in original pixels (e.g. the top-scoring ``pred_masks``); pixels
            outside it are drawn black, as the regressor saw them. None = unmasked.
        tile_size: side of each tile in pixels.
        title: written on the first tile (e.g. "112 mo (true 120)").
    Returns:
        uint8 BGR image [tile_size, tile_size * (1 + len(maps)), 3].
    """
    image = np.asarray(image)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if mask is not None:
        image = image * (np.asarray(mask, dtype=bool)[..., None])
    if box is None:
        h, w = image.shape[:2]
        side = max(h, w)
        box = [(w - side) / 2, (h - side) / 2, (w + side) / 2, (h + side) / 2]
    view = crop_square(image.astype(np.uint8), box, tile_size)
    tiles = [view.copy()]
    for name, heat in maps.items():
        tile = overlay_heatmap(view, heat, alpha)
        cv2.putText(tile, name, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, TEXT_COLOUR, 1)
        tiles.append(tile)
    if title:
        cv2.putText(tiles[0], title, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, TEXT_COLOUR, 1)
    return np.concatenate(tiles, axis=1)
