"""Controlled changes to a uint8 radiograph: the bad inputs the checks must flag and the
perturbations of the stress test (one place for each; torch-free)."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from ..convert.hand_masks import derive_hand_mask

__all__ = [
    "BAD_INPUTS",
    "chest_like",
    "crop_through_hand",
    "gamma",
    "gaussian_noise",
    "halve_resolution",
    "hflip",
    "invert",
    "jpeg",
    "noise_only",
    "paste_lr_tag",
    "rotate",
    "text_image",
    "two_hands",
]


def invert(gray: np.ndarray) -> np.ndarray:
    """Negative film (a MONOCHROME1 image read as MONOCHROME2)."""
    return (255 - gray).astype(np.uint8)


def rotate(gray: np.ndarray, degrees: float) -> np.ndarray:
    """Rotated by ``degrees`` (counter-clockwise) about the centre; 90 steps are exact and swap
    the sides, other angles keep the size and fill with the darkest grey level."""
    if degrees % 90 == 0:
        return np.ascontiguousarray(np.rot90(gray, int(degrees // 90) % 4))
    h, w = gray.shape
    m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), degrees, 1.0)
    fill = int(np.percentile(gray, 1.0))
    return cv2.warpAffine(gray, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=fill)


def hflip(gray: np.ndarray) -> np.ndarray:
    """Mirrored left-right (a right hand looks like a left one)."""
    return np.ascontiguousarray(gray[:, ::-1])


def gamma(gray: np.ndarray, g: float) -> np.ndarray:
    """Grey levels raised to ``g`` (on [0, 1]): > 1 darker mid-tones, < 1 brighter."""
    lut = np.clip(255.0 * (np.arange(256) / 255.0) ** g + 0.5, 0, 255).astype(np.uint8)
    return lut[gray]


def gaussian_noise(gray: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    """Additive Gaussian noise of ``sigma`` grey levels."""
    noise = np.random.default_rng(seed).normal(0.0, sigma, gray.shape)
    return np.clip(gray + noise, 0, 255).astype(np.uint8)


def jpeg(gray: np.ndarray, quality: int) -> np.ndarray:
    """Round trip through JPEG at ``quality`` (1-100)."""
    ok, buf = cv2.imencode(".jpg", gray, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)


def halve_resolution(gray: np.ndarray) -> np.ndarray:
    """Half the pixels per side (INTER_AREA), the detail of a smaller scan."""
    h, w = gray.shape
    return cv2.resize(gray, (max(1, w // 2), max(1, h // 2)), interpolation=cv2.INTER_AREA)


def paste_lr_tag(gray: np.ndarray, letter: str = "L") -> np.ndarray:
    """A bright L/R marker pasted near the top-left corner (a lead letter on the film)."""
    out = gray.copy()
    h, w = out.shape
    s = max(h, w) / 512.0
    x0, y0 = int(0.04 * w), int(0.04 * h)
    side = max(8, int(40 * s))
    cv2.rectangle(out, (x0, y0), (x0 + side, y0 + side), 60, -1)
    cv2.putText(
        out, letter, (x0 + side // 6, y0 + 5 * side // 6), cv2.FONT_HERSHEY_SIMPLEX,
        side / 30.0, 255, max(1, int(3 * s)), cv2.LINE_AA,
    )  # fmt: skip
    return out


def crop_through_hand(gray: np.ndarray, hand: np.ndarray | None = None) -> np.ndarray:
    """The left and right thirds of the hand cut away: the picture ends inside the hand.

    ``hand``: a boolean mask of the hand (its box is cut); without one, the converter's derived
    hand mask; when neither finds a hand, the image's middle third of columns and rows from 20 %
    of the height are kept.
    """
    h, w = gray.shape
    if hand is None:
        hand = derive_hand_mask(gray)
    if hand.any():
        ys, xs = np.nonzero(hand)
        x0, x1, y0 = xs.min(), xs.max(), ys.min()
        third = (x1 - x0) // 3
        top = y0 + (ys.max() - y0) // 4
        return np.ascontiguousarray(gray[top:, x0 + third : x1 - third])
    return np.ascontiguousarray(gray[h // 5 :, w // 3 : 2 * w // 3])


def noise_only(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """Smoothed random noise of ``shape``: a film with no content."""
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.normal(0.0, 1.0, shape).astype(np.float32), (0, 0), 2.0)
    img = (img - img.min()) / max(float(np.ptp(img)), 1e-6)
    return (255 * img).astype(np.uint8)


def chest_like(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """A chest-film-like image: a bright rounded torso with two darker lungs and a spine."""
    rng = np.random.default_rng(seed)
    h, w = shape
    img = np.full(shape, 20.0, np.float32)
    c = (w // 2, h // 2)
    cv2.ellipse(img, c, (int(0.42 * w), int(0.45 * h)), 0, 0, 360, 170, -1)
    for dx in (-1, 1):
        lung = (int(w / 2 + dx * 0.19 * w), int(0.45 * h))
        cv2.ellipse(img, lung, (int(0.14 * w), int(0.3 * h)), 0, 0, 360, 90, -1)
    cv2.rectangle(img, (int(0.47 * w), int(0.1 * h)), (int(0.53 * w), int(0.92 * h)), 210, -1)
    img = cv2.GaussianBlur(img, (0, 0), 0.02 * max(h, w)) + rng.normal(0, 4, shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def text_image(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """A page of dark text on a light background (a scanned document, not a film)."""
    rng = np.random.default_rng(seed)
    h, w = shape
    img = np.full(shape, 235, np.uint8)
    scale = max(h, w) / 900.0
    step = max(12, int(32 * scale))
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz      "))
    for y in range(step, h - step // 2, step):
        line = "".join(rng.choice(letters, size=60))
        cv2.putText(img, line, (10, y), cv2.FONT_HERSHEY_SIMPLEX, scale, 20, 1, cv2.LINE_AA)
    return img


def two_hands(gray: np.ndarray) -> np.ndarray:
    """The film beside its mirror image (both hands on one film, twice as wide)."""
    return np.ascontiguousarray(np.concatenate([gray, gray[:, ::-1]], axis=1))


# The synthetic bad inputs (name -> make it from a clean film) and the flag each must raise.
BAD_INPUTS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], str]] = {
    "inverted": (invert, "inverted_polarity"),
    "rotated_90": (lambda g: rotate(g, 90), "extreme_rotation"),
    "cropped_through_hand": (crop_through_hand, "hand_cut_by_border"),
    "noise_only": (lambda g: noise_only(g.shape), "not_hand_radiograph"),
    "chest_like": (lambda g: chest_like(g.shape), "not_hand_radiograph"),
    "text_page": (lambda g: text_image(g.shape), "not_hand_radiograph"),
    "two_hands": (two_hands, "multiple_hands"),
}
