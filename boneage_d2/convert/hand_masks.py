"""Hand masks derived from the radiograph alone, the way paper A made its training masks.

Paper A (the hand segmentation + residual attention method of docs/handseg_ran.md), Sec. 3:
"The hand masks in the training set were segmented using the Canny edge detector on histogram
normalized images." The paper gives no more detail; :func:`derive_hand_mask` fills it in with
the usual steps and a few guards that the real RSNA images need (checked on 12 real RSNA
training radiographs, ids 1377-1944; steps 8-10 tuned on real training films at 512 px,
docs/hand_masks.md):

1. work at a fixed size (long side ``work_long_side`` px), so sizes below are in those pixels;
2. histogram normalisation: CLAHE (contrast-limited adaptive histogram equalisation);
3. Gaussian smoothing and Canny edges, thresholds from a percentile of the gradient magnitude,
   so dark, bright and low-contrast scans get comparable edge maps;
4. long straight lines (collimator and cassette borders, ruler edges) found with a Hough
   transform are removed from the edges and used only as barriers;
5. morphological closing joins the skin outline and the bone edges into closed contours;
6. the enclosed regions are filled: small ones always; those reaching the image border or a
   border line, or large ones, only when at least as bright as the hand's edges (a forearm
   leaving the picture is filled, the collimated background beside the hand is not);
7. an opening removes thin left-overs (and most strips along collimator edges), leaving
   pieces: one hand, or on dark and low-contrast films fragments (fingers, thumb, forearm);
8. tiny pieces and markers (L/R tags: small pieces whose bright part is far brighter than their
   median, or much of which is near the image's maximum) are dropped;
9. pieces within ``merge_gap_px`` are joined by a line and completed with the tissue-bright
   pixels of their convex hull (palm, thumb base); two hands within ``join_gap_px`` merge when
   tissue joins them (a forearm below a missed wrist), apart on a darker field they stay two;
10. hands above ``min_area_fraction`` of the image and ``min_relative_area`` of the largest stay.

The mask is resized back to the input size (smoothed, linearly interpolated, thresholded).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..io.atomic import atomic_open
from ..io.intensity import stretch_percentiles
from ..io.radiograph import ImageReadError, read_gray_unchanged, read_radiograph
from .parallel import map_in_order

__all__ = [
    "HandMaskParams",
    "MASK_SUFFIX",
    "MASK_THRESHOLD",
    "derive_hand_mask",
    "derive_masks",
    "mask_path_for",
    "read_mask",
    "write_mask",
]

# A stored mask is 8-bit; hand where the value is > MASK_THRESHOLD (docs/data.md).
MASK_THRESHOLD = 127
MASK_SUFFIX = "_mask.png"


@dataclass(frozen=True)
class HandMaskParams:
    """Parameters of :func:`derive_hand_mask`; sizes are in pixels of the working image.

    Tuned on 12 real RSNA training radiographs (ids 1377-1944); the piece, marker, merge and
    tissue ones on 334 more real training films (docs/hand_masks.md).
    """

    work_long_side: int = 512  # the image is resized so that its long side has this length
    clahe_clip: float = 2.0  # CLAHE clip limit (histogram normalisation)
    clahe_tiles: int = 8  # CLAHE tile grid (tiles per side)
    blur_sigma: float = 2.0  # Gaussian smoothing before Canny
    canny_percentile: float = 85.0  # Canny high threshold = this percentile of |gradient|
    canny_low_ratio: float = 0.4  # Canny low threshold = ratio * high threshold
    line_min_length: float = 0.4  # border lines: at least this fraction of the long side ...
    line_max_tilt_deg: float = 15.0  # ... within this angle of horizontal / vertical ...
    line_max_gap: int = 6  # ... allowing gaps up to this length (Hough ``maxLineGap``)
    close_px: int = 9  # closing kernel (ellipse diameter) joining edges into contours
    open_px: int = 11  # opening kernel removing thin left-overs (strips along borders)
    small_hole_fraction: float = 0.08  # enclosed regions up to this image fraction are filled
    large_hole_fraction: float = 0.4  # bright regions (>= hand edge brightness) up to this ...
    min_edge_share: float = 0.6  # ... whose outline is at least this share of hand edges
    min_area_fraction: float = 0.01  # keep hands of at least this image fraction ...
    min_relative_area: float = 0.2  # ... and this fraction of the largest hand
    min_piece_fraction: float = 0.001  # smaller pieces (components after the opening): dropped
    marker_max_fraction: float = 0.08  # a piece under this image fraction is a marker when ...
    marker_contrast: float = 0.55  # ... its p99 - p50 is this share of the image maximum ...
    marker_bright_share: float = 0.15  # ... or this share of it is >= 0.9 x the image maximum
    merge_gap_px: float = 20.0  # pieces at most this far apart are fragments of one hand
    bridge_px: int = 7  # width of the line drawn between two such pieces
    tissue_level: float = 0.5  # hull pixels above background + this x (tissue - background) ...
    tissue_ring_px: int = 21  # ... (background: a ring this wide around the hull) join a hand
    join_gap_px: float = 100.0  # hands at most this far apart merge when tissue joins them


def _ellipse(diameter: int) -> np.ndarray:
    d = max(1, int(diameter))
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (d, d))


def _border_lines(edges: np.ndarray, p: HandMaskParams) -> np.ndarray:
    """uint8 mask (255) of long, nearly axis-aligned straight lines in an edge map."""
    h, w = edges.shape
    lines = np.zeros_like(edges)
    found = cv2.HoughLinesP(
        cv2.dilate(edges, np.ones((3, 3), np.uint8)),
        rho=2,
        theta=np.pi / 360,
        threshold=150,
        minLineLength=int(p.line_min_length * max(h, w)),
        maxLineGap=p.line_max_gap,
    )
    if found is None:
        return lines
    for x1, y1, x2, y2 in np.asarray(found).reshape(-1, 4).tolist():
        angle = np.degrees(np.arctan2(abs(y2 - y1), abs(x2 - x1)))
        if min(angle, 90.0 - angle) <= p.line_max_tilt_deg:
            cv2.line(lines, (x1, y1), (x2, y2), 255, 3)
    return cv2.dilate(lines, _ellipse(5))


def _fill_enclosed(
    closed: np.ndarray, barriers: np.ndarray, smooth: np.ndarray, p: HandMaskParams
) -> np.ndarray:
    """Fill the regions enclosed by ``closed`` edges (step 6 of the module docstring)."""
    h, w = closed.shape
    border = np.zeros_like(closed)
    border[0, :] = border[-1, :] = border[:, 0] = border[:, -1] = 255
    free = ((closed | barriers | border) == 0).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(free, connectivity=4)
    if n <= 1:
        return closed.copy()
    area = stats[:, cv2.CC_STAT_AREA].astype(np.float64)
    # Each barrier pixel is credited to the (highest-numbered) free region next to it, to measure
    # how much of a region's outline is hand edges, image border, or removed border lines.
    neighbour = cv2.dilate(labels.astype(np.float32), np.ones((3, 3), np.uint8)).astype(np.int64)
    on_edges = closed > 0
    on_lines = (barriers > 0) & ~on_edges
    on_border = (border > 0) & ~on_edges & ~on_lines
    edge_len = np.bincount(neighbour[on_edges], minlength=n).astype(np.float64)
    line_len = np.bincount(neighbour[on_lines], minlength=n).astype(np.float64)
    border_len = np.bincount(neighbour[on_border], minlength=n).astype(np.float64)
    # Removed border lines count for neither side: a finger cut by a false "line" stays fillable.
    edge_share = edge_len / np.maximum(edge_len + border_len, 1.0)
    mean = np.bincount(labels.ravel(), weights=smooth.ravel(), minlength=n) / np.maximum(area, 1)
    hand_level = float(smooth[on_edges].mean()) if on_edges.any() else 255.0
    small = (area <= p.small_hole_fraction * h * w) & (line_len + border_len == 0)
    bright = (
        (area <= p.large_hole_fraction * h * w)
        & (mean >= hand_level)
        & (edge_share >= p.min_edge_share)
    )
    fill = small | bright
    fill[0] = False
    filled = np.where(fill[labels], np.uint8(255), closed).astype(np.uint8)
    # Give back line pixels lying inside the filled hand (a false line across a finger).
    bridged = cv2.morphologyEx(filled, cv2.MORPH_CLOSE, _ellipse(p.close_px + 4))
    filled[(barriers > 0) & (bridged > 0)] = 255
    return filled


def _is_marker(values: np.ndarray, top: float, p: HandMaskParams) -> bool:
    """A marker (lead letters on a tag): part of it far brighter than its median, or much of it
    near the image's maximum; a hand piece's bone is neither (measured on real films)."""
    if top <= 0:
        return False
    p50, p99 = np.percentile(values, [50, 99])
    bright = float((values >= 0.9 * top).mean())
    return p99 - p50 >= p.marker_contrast * top or bright >= p.marker_bright_share


def _pieces(
    opened: np.ndarray, raw: np.ndarray, p: HandMaskParams
) -> tuple[list[np.ndarray], np.ndarray]:
    """The opened mask's pieces that may be hand (large enough, not markers), as (N, 2) arrays
    of their pixels' (y, x), and a uint8 mask (255) of the markers."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(opened, connectivity=8)
    top = float(raw.max())
    pieces, markers = [], np.zeros_like(opened)
    for i in range(1, n):
        share = stats[i, cv2.CC_STAT_AREA] / opened.size
        if share < p.min_piece_fraction:
            continue
        yx = np.argwhere(labels == i)
        if share < p.marker_max_fraction and _is_marker(raw[yx[:, 0], yx[:, 1]], top, p):
            markers[yx[:, 0], yx[:, 1]] = 255
        else:
            pieces.append(yx)
    return pieces, markers


def _bridges(pieces: list[np.ndarray], shape: tuple[int, int], p: HandMaskParams) -> np.ndarray:
    """uint8 mask (255) of the pieces, those within ``merge_gap_px`` joined by a line between
    their nearest points (single linkage, shortest links first): one component per group."""
    canvas = np.zeros(shape, np.uint8)
    links = []
    for a, yx in enumerate(pieces):
        canvas[yx[:, 0], yx[:, 1]] = 255
        alone = np.full(shape, 255, np.uint8)
        alone[yx[:, 0], yx[:, 1]] = 0
        dist = cv2.distanceTransform(alone, cv2.DIST_L2, 5)
        for b in range(a + 1, len(pieces)):
            d = dist[pieces[b][:, 0], pieces[b][:, 1]]
            k = int(np.argmin(d))
            if d[k] <= p.merge_gap_px:
                links.append((float(d[k]), a, b, pieces[b][k]))
    group = list(range(len(pieces)))  # group id of each piece
    for _, a, b, end in sorted(links, key=lambda t: t[:3]):
        if group[a] == group[b]:
            continue
        old = group[b]
        group = [group[a] if g == old else g for g in group]
        start = pieces[a][int(np.argmin(((pieces[a] - end) ** 2).sum(axis=1)))]
        xy0, xy1 = (int(start[1]), int(start[0])), (int(end[1]), int(end[0]))
        cv2.line(canvas, xy0, xy1, 255, p.bridge_px)
    return canvas


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """``mask`` (uint8, 255) with every region it encloses filled."""
    outside = np.pad(mask, 1)
    cv2.floodFill(outside, None, (0, 0), 255)
    return mask | np.where(outside[1:-1, 1:-1] == 0, np.uint8(255), np.uint8(0))


def _tissue(group: np.ndarray, soft: np.ndarray, p: HandMaskParams) -> np.ndarray:
    """``group`` plus the pixels of its convex hull as bright as tissue in ``soft`` (smoothed
    image, markers 0): above the background (a ring around the hull) by ``tissue_level`` of the
    way to the group's own level."""
    hull = np.zeros_like(group)
    cv2.fillConvexPoly(hull, cv2.convexHull(cv2.findNonZero(group)), 255)
    ring = (cv2.dilate(hull, _ellipse(p.tissue_ring_px)) > 0) & (hull == 0)
    background = float(np.median(soft[ring])) if ring.any() else 0.0
    tissue = float(np.percentile(soft[group > 0], 30))
    if tissue <= background:
        return group.copy()
    level = background + p.tissue_level * (tissue - background)
    grown = np.where((soft > level) & (hull > 0), np.uint8(255), np.uint8(0))
    return cv2.morphologyEx(grown, cv2.MORPH_OPEN, _ellipse(5)) | group


def _complete(group: np.ndarray, soft: np.ndarray, p: HandMaskParams) -> np.ndarray:
    """A connected group of fragments with the tissue joined to it, holes filled."""
    _, labels = cv2.connectedComponents(_tissue(group, soft, p), connectivity=8)
    seed = labels[group > 0][0]
    return _fill_holes(np.where(labels == seed, np.uint8(255), np.uint8(0)))


def _join_by_tissue(hands: list[np.ndarray], soft: np.ndarray, p: HandMaskParams) -> None:
    """Merge (in place) two hands within ``join_gap_px`` that tissue joins inside the hull of
    both (a forearm below a missed wrist); hands apart on a darker field stay apart."""
    a = 0
    while a < len(hands):
        dist = cv2.distanceTransform(255 - hands[a], cv2.DIST_L2, 5)
        for b in range(a + 1, len(hands)):
            if dist[hands[b] > 0].min() > p.join_gap_px:
                continue
            _, labels = cv2.connectedComponents(_tissue(hands[a] | hands[b], soft, p))
            if labels[hands[a] > 0][0] == labels[hands[b] > 0][0]:
                hands[a] = _complete(hands[a] | hands[b], soft, p)
                del hands[b]
                break
        else:
            a += 1


def _hands_from_pieces(opened: np.ndarray, raw: np.ndarray, p: HandMaskParams) -> np.ndarray:
    """Steps 8-10 of the module docstring: markers dropped, fragments merged and completed,
    the large hands kept."""
    pieces, markers = _pieces(opened, raw, p)
    n, labels = cv2.connectedComponents(_bridges(pieces, opened.shape, p), connectivity=8)
    soft = cv2.GaussianBlur(raw, (0, 0), 2.0)
    soft[cv2.dilate(markers, _ellipse(9)) > 0] = 0  # a marker never counts as tissue
    groups = [np.where(labels == i, np.uint8(255), np.uint8(0)) for i in range(1, n)]
    hands = [_complete(group, soft, p) for group in groups]
    _join_by_tissue(hands, soft, p)
    areas = [int(np.count_nonzero(h)) for h in hands]
    out = np.zeros_like(opened)
    for hand, area in zip(hands, areas):
        if area >= p.min_area_fraction * opened.size and area >= p.min_relative_area * max(areas):
            out |= hand
    return out


def derive_hand_mask(gray: np.ndarray, params: HandMaskParams | None = None) -> np.ndarray:
    """Derive a boolean hand mask (HxW, same size as ``gray``) from a radiograph.

    ``gray``: HxW uint8 (or 16-bit/float, windowed to uint8 first; HxWx3 is converted to gray).
    Returns ``np.ndarray[bool]``, True on the hand(s). Implements paper A's "Canny edge detector
    on histogram normalized images" with closing and filled largest contours (module docstring).

    Good enough to mask tags and borders away from the hand and to give one box per hand; not
    a substitute for a trained segmentation (what still fails: docs/hand_masks.md).
    """
    p = params or HandMaskParams()
    img = np.asarray(gray)
    if img.ndim == 3:
        img = cv2.cvtColor(img[:, :, :3], cv2.COLOR_BGR2GRAY)
    if img.dtype != np.uint8:
        img = stretch_percentiles(img)
    if img.ndim != 2 or img.size == 0:
        raise ValueError(f"derive_hand_mask expects a non-empty HxW image, got {img.shape}")
    height, width = img.shape
    scale = p.work_long_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = cv2.resize(img, size, interpolation=cv2.INTER_AREA)

    tiles = max(1, p.clahe_tiles)
    equalised = cv2.createCLAHE(clipLimit=p.clahe_clip, tileGridSize=(tiles, tiles)).apply(small)
    smooth = cv2.GaussianBlur(equalised, (0, 0), p.blur_sigma)
    gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1)
    high = max(float(np.percentile(np.abs(gx) + np.abs(gy), p.canny_percentile)), 1.0)
    edges = cv2.Canny(smooth, p.canny_low_ratio * high, high)

    lines = _border_lines(edges, p)
    edges[lines > 0] = 0
    closed = cv2.morphologyEx(edges, cv2.MORPH_CLOSE, _ellipse(p.close_px))
    filled = _fill_enclosed(closed, lines, smooth.astype(np.float64), p)
    opened = cv2.morphologyEx(filled, cv2.MORPH_OPEN, _ellipse(p.open_px))
    kept = _hands_from_pieces(opened, small, p)

    if kept.shape != (height, width):
        soft = cv2.GaussianBlur(kept, (0, 0), 1.0)
        kept = cv2.resize(soft, (width, height), interpolation=cv2.INTER_LINEAR)
    return kept > MASK_THRESHOLD


def mask_path_for(mask_dir: str | os.PathLike, image_id: str) -> Path:
    """``<mask_dir>/<id>_mask.png`` (the layout of docs/data.md)."""
    return Path(mask_dir) / f"{image_id}{MASK_SUFFIX}"


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """Read a stored hand mask as ``np.ndarray[bool]`` (HxW): hand where the 8-bit value > 127.

    Colour files are converted to gray (an alpha channel is ignored); 16-bit files are scaled to
    8 bits first. Raises ``ImageReadError`` naming the file when it is missing, unreadable or
    truncated.
    """
    img = read_gray_unchanged(path, "mask")
    if img.dtype == np.uint16:
        img = (img // 257).astype(np.uint8)
    return img > MASK_THRESHOLD


def write_mask(path: str | os.PathLike, mask: np.ndarray) -> None:
    """Write a boolean mask as an 8-bit PNG (255 = hand), atomically."""
    ok, buf = cv2.imencode(".png", np.where(np.asarray(mask, dtype=bool), 255, 0).astype(np.uint8))
    if not ok:
        raise OSError(f"{path}: could not encode the mask as PNG")
    with atomic_open(path, "wb") as f:
        f.write(buf.tobytes())


def _derive_one(job: tuple[str, str, HandMaskParams]) -> tuple[str, str | None]:
    image_path, out_path, params = job
    try:
        mask = derive_hand_mask(read_radiograph(image_path), params)
        write_mask(out_path, mask)
    except (ImageReadError, OSError, ValueError) as e:
        return image_path, str(e)
    return image_path, None


def derive_masks(
    paths: Iterable[str | os.PathLike],
    out_dir: str | os.PathLike,
    workers: int = 1,
    progress: bool = True,
    params: HandMaskParams | None = None,
) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Derive and write ``<out_dir>/<id>_mask.png`` for every radiograph in ``paths``.

    ``<id>`` is the image file's stem. Runs on ``workers`` processes (``multiprocessing.Pool``)
    with a tqdm progress bar (stderr) unless ``progress`` is False. Returns ``(written, failed)``:
    the mask paths written, and ``(image path, reason)`` for images that could not be read
    (missing, unreadable, truncated); a bad image never stops the others.
    """
    p = params or HandMaskParams()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(os.fspath(x), os.fspath(mask_path_for(out, Path(x).stem)), p) for x in paths]
    results = list(map_in_order(_derive_one, jobs, workers, "hand masks", progress))
    written = [Path(j[1]) for j, (_, err) in zip(jobs, results) if err is None]
    failed = [(Path(src), err) for src, err in results if err is not None]
    return written, failed
