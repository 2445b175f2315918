"""One upload -> one prediction: decode through the model's intensity pipeline (within its pixel
budget), infer under the model's lock, the ``prediction_record`` plus timings (and an overlay on
request)."""

from __future__ import annotations

import base64
import time
from contextlib import AbstractContextManager

from ..engine.prediction_io import prediction_record
from ..io.radiograph import (
    ImageReadError,
    ImageTooLarge,
    read_radiograph_bytes,
    sniff_image_format,
)
from .models import ServedModel

__all__ = ["UndecodableImage", "predict_upload", "upload_name"]


class UndecodableImage(ValueError):
    """An upload that is not a radiograph the readers can decode; ``recognised``: whether its
    bytes carry a PNG/JPEG/DICOM signature (a damaged image) or not (not an image at all)."""

    def __init__(self, message: str, recognised: bool):
        super().__init__(message)
        self.recognised = recognised


def upload_name(filename: str, echo: bool) -> str:
    """The name an upload is read and reported under: the client's file name when ``echo``,
    else ``upload`` with the name's suffix (which marks DICOM), so messages never repeat it."""
    if echo and filename:
        return filename
    suffix = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    return "upload" + (f".{suffix}" if suffix.isalnum() and len(suffix) <= 6 else "")


def _overlay_png(gray, output: dict, male: bool) -> str:
    import cv2

    from ..vis.overlays import draw_prediction

    ok, png = cv2.imencode(".png", draw_prediction(gray, output, male)[:, :, ::-1])
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 RGB image
        raise RuntimeError("could not encode the overlay PNG")
    return base64.b64encode(png.tobytes()).decode("ascii")


def predict_upload(
    model: ServedModel,
    data: bytes,
    filename: str,
    male: bool,
    overlay: bool = False,
    age_months: float | None = None,
    sd_table=None,
    reject_flagged: bool = False,
    forward: AbstractContextManager | None = None,
    file_label: str | None = None,
    max_pixels: int | None = None,
) -> dict:
    """The JSON answer for one uploaded file (blocking: run it in a worker thread).

    Decoding and pre-processing run outside the model's lock, the forward pass inside
    ``forward`` (default: the model's lock), so concurrent requests never share a model call and
    each gets the output of its own input. ``filename`` names the upload in errors and marks
    DICOM by its suffix; the answer's ``file`` is ``file_label``. ``ImageTooLarge`` for a header
    over ``max_pixels`` (None: the model's ``BONEAGE.INPUT.MAX_PIXELS``), ``UndecodableImage``
    for bytes the readers reject (the decoder's reason in its message). With ``age_months``
    (chronological) and ``sd_table`` the answer has the delay and SDS; ``reject_flagged``: no
    ages for a film flagged as not a readable hand film.
    """
    t0 = time.perf_counter()
    predictor = model.predictor
    try:
        limit = predictor.max_pixels if max_pixels is None else max_pixels
        gray = read_radiograph_bytes(data, filename, predictor.intensity, limit)
    except ImageTooLarge:
        raise
    except ImageReadError as e:
        raise UndecodableImage(str(e), sniff_image_format(data) is not None) from e
    inp = {**predictor.model_input(gray, male), "file_name": file_label or ""}
    t1 = time.perf_counter()
    with forward if forward is not None else model.lock:
        t2 = time.perf_counter()
        output = predictor.predict_batch([inp])[0]
    t3 = time.perf_counter()
    record = prediction_record(
        inp, output, reject_flagged, age_months=age_months, sd_table=sd_table
    )
    record["file"] = file_label
    answer = {"model": model.name, **record}
    if overlay:
        answer["overlay_png_base64"] = _overlay_png(gray, output, male)
    answer["image_hw"] = list(gray.shape)
    answer["timing_ms"] = {
        "decode": round((t1 - t0) * 1000, 2),
        "wait": round((t2 - t1) * 1000, 2),
        "inference": round((t3 - t2) * 1000, 2),
        "total": round((time.perf_counter() - t0) * 1000, 2),
    }
    return answer
