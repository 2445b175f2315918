"""The intensity pipeline: a radiograph's stored values -> the uint8 grey levels the model sees.

One pipeline for every format (docs/inputs.md), built from ``cfg.BONEAGE.INPUT.INTENSITY`` by
the mapper (training, evaluation) and the predictor alike:

1. display range: DICOM through its modality LUT (rescale) and its VOI LUT or window
   (``dicom_window_index``), scaled over the output range of the last step; PNG/JPEG scaled over
   their bit depth (8-bit as stored);
2. MONOCHROME1 inverted, so bone is bright;
3. ``"bit_depth"``: rounded to uint8; ``"percentiles"``: stretched between the ``low_pct`` and
   ``high_pct`` percentiles first (every format, 8-bit included).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "PIPELINES",
    "IntensityPipeline",
    "RawRadiograph",
    "display_grey",
    "stretch_percentiles",
]

PIPELINES = ("bit_depth", "percentiles")


@dataclass(frozen=True)
class RawRadiograph:
    """A radiograph's stored values and what maps them to grey levels.

    ``pixels``: HxW at the file's own depth (colour already converted to gray). ``bits``: the
    depth PNG/JPEG (and colour DICOM) values are scaled by. ``monochrome1``: low values are
    bright (DICOM MONOCHROME1). ``dicom``: the pydicom dataset whose modality and VOI LUT modules
    apply (None for PNG/JPEG and colour DICOM).
    """

    pixels: np.ndarray
    bits: int = 8
    monochrome1: bool = False
    dicom: Any = field(default=None, repr=False)


def _lut_bits(values: np.ndarray, nominal: int) -> int:
    """Bits a LUT's output spans: from its largest entry, at least 8, at most ``nominal``."""
    return int(min(max(int(np.max(values)).bit_length(), 8), nominal))


def _modality_range(ds) -> tuple[float, float]:
    """(low, high) output range of the modality LUT (or rescale), the rule pydicom's windowing
    uses: the LUT's entry depth, else the BitsStored range, rescaled when slope and intercept
    are both present."""
    if ds.get("ModalityLUTSequence"):
        return 0.0, float(2 ** int(ds.ModalityLUTSequence[0].LUTDescriptor[2]) - 1)
    bits = int(ds.BitsStored)
    if int(ds.get("PixelRepresentation", 0)) == 0:
        low, high = 0.0, float(2**bits - 1)
    else:
        low, high = float(-(2 ** (bits - 1))), float(2 ** (bits - 1) - 1)
    slope, intercept = ds.get("RescaleSlope"), ds.get("RescaleIntercept")
    if slope is not None and intercept is not None:
        low, high = low * float(slope) + float(intercept), high * float(slope) + float(intercept)
    return min(low, high), max(low, high)


def _voi_views(ds) -> tuple[str | None, int]:
    """Which VOI step pydicom's ``apply_voi_lut`` takes (``"lut"``, ``"window"`` or None) and
    how many alternative views (LUTs or windows) the file offers."""
    seq = ds.get("VOILUTSequence")
    if seq and None not in (seq[0].get("LUTDescriptor"), seq[0].get("LUTData")):
        return "lut", len(seq)
    if ds.get("WindowCenter") is not None and ds.get("WindowWidth") is not None:
        return "window", min(ds["WindowCenter"].VM, ds["WindowWidth"].VM)
    return None, 0


def _dicom_values(raw: RawRadiograph, window_index: int) -> tuple[np.ndarray, float, float]:
    """Modality LUT, then VOI LUT or window: (values, low, high) with their output range."""
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    ds = raw.dicom
    values = apply_modality_lut(raw.pixels, ds)
    low, high = _modality_range(ds)
    kind, views = _voi_views(ds)
    if kind is None:
        return values, low, high
    if window_index >= views:
        raise ValueError(
            f"DICOM_WINDOW_INDEX {window_index} but the file has {views} VOI {kind}(s)"
        )
    if kind == "lut":
        values = np.rint(values).astype(np.int64)  # a LUT is indexed by integer values
        desc = ds.VOILUTSequence[window_index].LUTDescriptor
        entries = np.arange(desc[1], desc[1] + (desc[0] or 2**16))
        lut = apply_voi_lut(entries, ds, index=window_index)
        low, high = 0.0, float(2 ** _lut_bits(lut, int(desc[2])) - 1)
    return apply_voi_lut(values, ds, index=window_index), low, high


def display_grey(raw: RawRadiograph, window_index: int = 0) -> np.ndarray:
    """Float32 HxW grey levels in [0, 255], bone bright: steps 1-2 of the module docstring."""
    if raw.dicom is not None:
        values, low, high = _dicom_values(raw, window_index)
    else:
        values, low, high = raw.pixels, 0.0, float(2**raw.bits - 1)
    scale = np.float32(255.0 / max(high - low, 1e-6))
    grey = (np.asarray(values, dtype=np.float32) - np.float32(low)) * scale
    np.clip(grey, 0.0, 255.0, out=grey)
    if raw.monochrome1:
        np.subtract(np.float32(255.0), grey, out=grey)
    return grey


def _round_uint8(grey: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(grey), 0, 255).astype(np.uint8)


def stretch_percentiles(
    img: np.ndarray, low_pct: float = 0.5, high_pct: float = 99.5
) -> np.ndarray:
    """Any HxW array -> uint8, linearly stretched so its ``low_pct`` and ``high_pct`` percentiles
    become 0 and 255 (tails clipped); a constant image becomes 0."""
    img = np.asarray(img, dtype=np.float32)
    low, high = (float(v) for v in np.percentile(img, [low_pct, high_pct]))
    if high <= low:
        high = low + 1.0
    return _round_uint8((img - np.float32(low)) * np.float32(255.0 / (high - low)))


@dataclass(frozen=True)
class IntensityPipeline:
    """``RawRadiograph`` -> uint8 HxW model input. ``name``: one of :data:`PIPELINES`;
    ``low_pct``/``high_pct``: the ``"percentiles"`` stretch; ``dicom_window_index``: which VOI
    LUT or window of a DICOM file (0 = the first)."""

    name: str = "bit_depth"
    low_pct: float = 0.5
    high_pct: float = 99.5
    dicom_window_index: int = 0

    def __post_init__(self):
        if self.name not in PIPELINES:
            raise ValueError(f"intensity pipeline {self.name!r}: expected one of {PIPELINES}")
        if not 0.0 <= self.low_pct < self.high_pct <= 100.0:
            raise ValueError(
                f"percentiles {self.low_pct}, {self.high_pct}: need 0 <= LOW_PCT < HIGH_PCT <= 100"
            )
        if self.dicom_window_index < 0:
            raise ValueError(f"DICOM window index {self.dicom_window_index} must be >= 0")

    @classmethod
    def from_config(cls, cfg) -> IntensityPipeline:
        """From ``cfg.BONEAGE.INPUT.INTENSITY`` (``NAME``, ``LOW_PCT``, ``HIGH_PCT``,
        ``DICOM_WINDOW_INDEX``)."""
        node = cfg.BONEAGE.INPUT.INTENSITY
        return cls(
            name=str(node.NAME),
            low_pct=float(node.LOW_PCT),
            high_pct=float(node.HIGH_PCT),
            dicom_window_index=int(node.DICOM_WINDOW_INDEX),
        )

    def __call__(self, raw: RawRadiograph) -> np.ndarray:
        plain_8bit = raw.dicom is None and not raw.monochrome1 and raw.pixels.dtype == np.uint8
        if self.name == "bit_depth" and plain_8bit:
            return raw.pixels  # 8-bit PNG/JPEG: exactly as stored
        grey = display_grey(raw, self.dicom_window_index)
        if self.name == "percentiles":
            return stretch_percentiles(grey, self.low_pct, self.high_pct)
        return _round_uint8(grey)
