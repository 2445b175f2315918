"""Many pictures on one page: a grid of overlays, each letterboxed into the same square cell."""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["contact_sheet"]


def contact_sheet(images: list[np.ndarray], cols: int = 5, cell_px: int = 256) -> np.ndarray:
    """Tile ``images`` (RGB or gray uint8, any sizes) row by row into a ``cols``-wide grid.

    Each image is scaled to fit a ``cell_px`` square (aspect kept, centred on black). Returns
    an RGB uint8 array [rows * cell_px, cols * cell_px, 3].
    """
    if not images:
        raise ValueError("contact_sheet needs at least one image")
    if cols < 1 or cell_px < 8:
        raise ValueError(f"cols must be >= 1 and cell_px >= 8; got {cols}, {cell_px}")
    rows = -(-len(images) // cols)
    sheet = np.zeros((rows * cell_px, cols * cell_px, 3), np.uint8)
    for i, image in enumerate(images):
        rgb = image if image.ndim == 3 else np.repeat(image[:, :, None], 3, axis=2)
        scale = cell_px / max(rgb.shape[:2])
        h, w = (max(1, round(s * scale)) for s in rgb.shape[:2])
        small = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
        top = (i // cols) * cell_px + (cell_px - h) // 2
        left = (i % cols) * cell_px + (cell_px - w) // 2
        sheet[top : top + h, left : left + w] = small
    return sheet
