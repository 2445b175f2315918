"""The FastAPI application: ``/health``, ``/models``, ``/predict`` and ``/models/{name}/predict``.

Every error is JSON with a ``detail`` string: 401 no valid API key (when keys are configured),
404 unknown model (the known ones listed), 413 upload over the limit or image over the pixel
budget, 415 not an image, 422 a damaged image or a bad form field (named), 503 the model's
queue full or the request timeout passed (with ``Retry-After``), 500 anything else (generic,
with the request id the traceback is logged under). Every field is checked before the model
runs. Inference runs in worker threads, one forward pass at a time per model.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ..io.radiograph import ImageTooLarge
from ..reference import SDTable
from ..version import __version__
from .auth import OPEN_PATHS, ApiKeyAuth
from .backpressure import DEFAULT_QUEUE_SIZE, DEFAULT_REQUEST_TIMEOUT_S, ModelBusy, ModelQueue
from .docs import add_offline_docs
from .errors import RequestIds
from .forms import read_predict_form, request_body_schema
from .inference import UndecodableImage, predict_upload, upload_name
from .limits import UploadLimit
from .models import ServedModel

__all__ = ["DEFAULT_MAX_UPLOAD_MB", "create_app"]

DEFAULT_MAX_UPLOAD_MB = 32.0
logger = logging.getLogger(__name__)


def _field(loc: tuple) -> str:
    where = {"body": "form field", "path": "path parameter", "query": "query parameter"}
    return f"{where.get(loc[0], loc[0])} {'.'.join(str(x) for x in loc[1:])!r}"


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with one readable ``detail`` line per bad field (FastAPI's list kept in ``errors``)."""
    errors = exc.errors()
    detail = "; ".join(f"{_field(tuple(e['loc']))}: {e['msg']}" for e in errors)
    plain = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in errors]
    return JSONResponse({"detail": detail, "errors": plain}, status_code=422)


def _with_security(app: FastAPI) -> None:
    """Declare the API keys in the OpenAPI schema (Swagger UI's "Authorize" button)."""

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            schema.setdefault("components", {})["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            }
            for path, ops in schema["paths"].items():
                if path not in OPEN_PATHS:
                    for op in ops.values():
                        op["security"] = [{"bearer": []}, {"apiKey": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi


def create_app(
    models: dict[str, ServedModel],
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
    *,
    api_keys: tuple[bytes, ...] = (),
    queue_size: int = DEFAULT_QUEUE_SIZE,
    request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S,
    max_pixels: int | None = None,
) -> FastAPI:
    """The service over ``models`` (loaded already; the first is the default).

    ``max_upload_mb``: larger bodies get 413 (parts are kept in memory up to it, never on
    disk). ``api_keys``: SHA-256 digests from ``load_api_keys`` (empty: no authentication).
    ``queue_size``: requests that may wait per model beyond the one running (503 past it);
    ``request_timeout_s``: how long one may wait for its model (503 after). ``max_pixels``: the
    pixel budget of every model's reader (None: each model's ``BONEAGE.INPUT.MAX_PIXELS``).
    """
    if not models:
        raise ValueError("create_app needs at least one model")
    limit_bytes = int(max_upload_mb * 2**20)
    app = FastAPI(
        title="boneage-d2",
        version=__version__,
        description="Bone age from a hand radiograph (Global, ALA-Net, HandSeg-RAN models).",
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(UploadLimit, limit_bytes=limit_bytes)
    if api_keys:
        app.add_middleware(ApiKeyAuth, digests=tuple(api_keys))
        _with_security(app)
    app.add_middleware(RequestIds)
    app.add_exception_handler(RequestValidationError, _validation_error)
    add_offline_docs(app)
    default = next(iter(models))
    queues = {
        name: ModelQueue(name, m.lock, queue_size, request_timeout_s) for name, m in models.items()
    }

    def lookup(name: str | None) -> ServedModel:
        name = default if name is None or name == "" else name
        if name not in models:
            raise HTTPException(404, f"unknown model {name!r}; known: {', '.join(models)}")
        return models[name]

    sd_table = SDTable.load()

    async def predict(request: Request, name: str | None) -> JSONResponse:
        if name is not None:
            lookup(name)  # an unknown model in the path: 404 before the body is read
        form = await read_predict_form(request, limit_bytes, sd_table, model_field=name is None)
        model = lookup(name if name is not None else form.model)
        queue = queues[model.name]
        label = form.filename if form.echo_filename else None
        try:
            with queue.admit() as deadline:
                answer = await run_in_threadpool(
                    predict_upload,
                    model,
                    form.data,
                    upload_name(form.filename, form.echo_filename),
                    form.male,
                    overlay=form.overlay,
                    age_months=form.age_months,
                    sd_table=sd_table,
                    reject_flagged=form.reject_flagged,
                    forward=queue.forward(deadline),
                    file_label=label,
                    max_pixels=max_pixels,
                )
        except ModelBusy as e:
            raise HTTPException(503, str(e), {"Retry-After": str(e.retry_after_s)}) from e
        except ImageTooLarge as e:
            raise HTTPException(413, str(e)) from e
        except UndecodableImage as e:
            raise HTTPException(422 if e.recognised else 415, str(e)) from e
        return JSONResponse(answer)

    @app.get("/health", summary="liveness and the loaded models")
    async def health() -> dict:
        return {"status": "ok", "models": list(models), "default_model": default}

    @app.get("/models", summary="the served models")
    async def list_models() -> dict:
        return {"default": default, "models": [m.describe() for m in models.values()]}

    @app.post(
        "/predict",
        summary="bone age of one radiograph (default model unless `model`)",
        openapi_extra={"requestBody": request_body_schema(model_field=True)},
    )
    async def predict_default(request: Request) -> JSONResponse:
        return await predict(request, None)

    @app.post(
        "/models/{name}/predict",
        summary="bone age of one radiograph with model `name`",
        openapi_extra={"requestBody": request_body_schema(model_field=False)},
    )
    async def predict_named(name: str, request: Request) -> JSONResponse:
        return await predict(request, name)

    return app
