"""The FastAPI application: ``/health``, ``/models``, ``/predict`` and ``/models/{name}/predict``.

Every error is JSON with a ``detail`` string: 404 unknown model (the known ones listed), 413
upload over the limit, 415 not an image, 422 a damaged image or a bad form field (``sex``
missing or not M/F, no ``file``). Inference runs in worker threads, one forward pass at a time
per model (``ServedModel.lock``), so concurrent requests each get their own answer.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the route signatures' types at
# run time, and the model field's description is built inside create_app.
import logging
from typing import Annotated

from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ..convert.label_files import parse_sex
from ..reference import SDTable
from ..version import __version__
from .inference import UndecodableImage, predict_upload
from .limits import UploadLimit
from .models import ServedModel

__all__ = ["DEFAULT_MAX_UPLOAD_MB", "create_app"]

DEFAULT_MAX_UPLOAD_MB = 32.0
logger = logging.getLogger(__name__)

SexField = Annotated[str, Form(description="the patient's sex: M or F (male/female accepted)")]
OverlayField = Annotated[
    bool, Form(description="add overlay_png_base64: the prediction drawn over the radiograph")
]
FileField = Annotated[UploadFile, File(description="one PNG, JPEG (8/16-bit) or DICOM file")]
RejectField = Annotated[
    bool, Form(description="no age for a film flagged as not a readable hand film (flags say why)")
]
AgeField = Annotated[
    float | None,
    Form(ge=0, description="chronological age in months: adds the delay and bone-age SDS"),
]


def _field(loc: tuple) -> str:
    where = {"body": "form field", "path": "path parameter", "query": "query parameter"}
    return f"{where.get(loc[0], loc[0])} {'.'.join(str(x) for x in loc[1:])!r}"


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with one readable ``detail`` line per bad field (FastAPI's list kept in ``errors``)."""
    errors = exc.errors()
    detail = "; ".join(f"{_field(tuple(e['loc']))}: {e['msg']}" for e in errors)
    plain = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in errors]
    return JSONResponse({"detail": detail, "errors": plain}, status_code=422)


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s", request.url.path)
    return JSONResponse({"detail": f"internal error: {type(exc).__name__}: {exc}"}, 500)


def _parse_sex(sex: str) -> bool:
    male, err = parse_sex(sex, is_male_column=False)
    if err:
        raise HTTPException(422, f"form field 'sex': {err}")
    return bool(male)


def create_app(
    models: dict[str, ServedModel], max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB
) -> FastAPI:
    """The service over ``models`` (loaded already; the first is the default), with bodies over
    ``max_upload_mb`` refused (413)."""
    if not models:
        raise ValueError("create_app needs at least one model")
    app = FastAPI(
        title="boneage-d2",
        version=__version__,
        description="Bone age from a hand radiograph (Global, ALA-Net, HandSeg-RAN models).",
    )
    app.add_middleware(UploadLimit, limit_bytes=int(max_upload_mb * 2**20))
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _internal_error)
    default = next(iter(models))

    def lookup(name: str | None) -> ServedModel:
        name = default if name is None or name == "" else name
        if name not in models:
            raise HTTPException(404, f"unknown model {name!r}; known: {', '.join(models)}")
        return models[name]

    sd_table = SDTable.load()

    async def predict(name: str | None, file: UploadFile, sex: str, **options) -> dict:
        model, male = lookup(name), _parse_sex(sex)
        data = await file.read()
        filename = file.filename or "upload"
        try:
            return await run_in_threadpool(
                lambda: predict_upload(model, data, filename, male, sd_table=sd_table, **options)
            )
        except UndecodableImage as e:
            raise HTTPException(422 if e.recognised else 415, str(e)) from e

    @app.get("/health", summary="liveness and the loaded models")
    async def health() -> dict:
        return {"status": "ok", "models": list(models), "default_model": default}

    @app.get("/models", summary="the served models")
    async def list_models() -> dict:
        return {"default": default, "models": [m.describe() for m in models.values()]}

    @app.post("/predict", summary="bone age of one radiograph (default model unless `model`)")
    async def predict_default(
        file: FileField,
        sex: SexField,
        model: Annotated[str | None, Form(description=f"model name [{default}]")] = None,
        overlay: OverlayField = False,
        age_months: AgeField = None,
        reject_flagged: RejectField = False,
    ) -> dict:
        return await predict(
            model, file, sex, overlay=overlay, age_months=age_months, reject_flagged=reject_flagged
        )

    @app.post("/models/{name}/predict", summary="bone age of one radiograph with model `name`")
    async def predict_named(
        name: str,
        file: FileField,
        sex: SexField,
        overlay: OverlayField = False,
        age_months: AgeField = None,
        reject_flagged: RejectField = False,
    ) -> dict:
        return await predict(
            name, file, sex, overlay=overlay, age_months=age_months, reject_flagged=reject_flagged
        )

    return app
