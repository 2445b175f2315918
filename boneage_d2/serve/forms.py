"""The prediction form: parsed in memory (never spooled to a temporary file) and every field
checked before the model runs; bad fields raise FastAPI's ``RequestValidationError`` (422)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import UploadFile
from starlette.formparsers import FormParser, MultiPartException, MultiPartParser

from ..convert.label_files import parse_sex
from ..reference import SDTable

__all__ = ["PredictForm", "read_predict_form", "request_body_schema"]

_MAX_FIELDS = 16
_MAX_TEXT_BYTES = 64 * 1024
FILE_DESCRIPTION = "one PNG, JPEG (8/16-bit) or DICOM file"


class _Fields(BaseModel):
    """The text fields of ``POST /models/{name}/predict``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    sex: Annotated[str, Field(description="the patient's sex: M or F (male/female accepted)")]
    age_months: Annotated[
        float | None,
        Field(
            ge=0,
            allow_inf_nan=False,
            description="chronological age in months, within the SD table's ages for the sex: "
            "adds the delay and bone-age SDS",
        ),
    ] = None
    overlay: Annotated[
        bool, Field(description="add overlay_png_base64: the prediction drawn over the radiograph")
    ] = False
    reject_flagged: Annotated[
        bool, Field(description="no age for a film flagged as not a readable hand film")
    ] = False
    echo_filename: Annotated[
        bool, Field(description="answer with the upload's file name in 'file' (else null)")
    ] = False


class _DefaultRouteFields(_Fields):
    """``POST /predict`` adds the model's name."""

    model: Annotated[str | None, Field(description="model name [the first served]")] = None


@dataclass
class PredictForm:
    """A checked prediction form: the file's bytes and name, and the text fields."""

    data: bytes
    filename: str
    male: bool
    age_months: float | None
    overlay: bool
    reject_flagged: bool
    echo_filename: bool
    model: str | None = None


def _invalid(field: str, msg: str, kind: str = "value_error") -> RequestValidationError:
    return RequestValidationError([{"loc": ("body", field), "msg": msg, "type": kind}])


async def _parse(request: Request, spool_limit: int):
    """The request's form, parts kept in memory up to ``spool_limit`` bytes each (the upload
    limit, which bounds the whole body: no part ever reaches a temporary file)."""
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        parser = MultiPartParser(
            request.headers,
            request.stream(),
            max_files=1,
            max_fields=_MAX_FIELDS,
            max_part_size=_MAX_TEXT_BYTES,
        )
        parser.spool_max_size = spool_limit + 1  # a SpooledTemporaryFile rolls over above it
    elif ctype.startswith("application/x-www-form-urlencoded"):
        parser = FormParser(
            request.headers,
            request.stream(),
            max_fields=_MAX_FIELDS,
            max_part_size=_MAX_TEXT_BYTES,
        )
    else:
        raise HTTPException(
            415, f"expected a multipart/form-data body (fields file, sex, ...), got {ctype!r}"
        )
    try:
        return await parser.parse()
    except MultiPartException as e:
        raise _invalid("file", f"malformed form: {e.message}") from e


def _age_in_table(age: float | None, male: bool, table: SDTable) -> None:
    if age is None:
        return
    ages = table.ages[male]
    lo, hi = float(ages[0]), float(ages[-1])
    if not lo <= age <= hi:
        raise _invalid(
            "age_months",
            f"{age:g} is outside the SD table's ages for {'a male' if male else 'a female'} "
            f"({lo:g}-{hi:g} months, docs/sds.md)",
        )


async def read_predict_form(
    request: Request, spool_limit: int, sd_table: SDTable, model_field: bool
) -> PredictForm:
    """Parse and check the form of a prediction request: one ``file`` part, the text fields of
    ``_Fields`` (plus ``model`` when ``model_field``), nothing else and nothing twice.
    ``RequestValidationError`` naming the field for any problem."""
    form = await _parse(request, spool_limit)
    try:
        items = form.multi_items()
        names = [k for k, _ in items]
        for name in dict.fromkeys(names):
            if names.count(name) > 1:
                raise _invalid(name, f"given {names.count(name)} times; send it once")
        values = dict(items)
        upload = values.pop("file", None)
        if upload is None:
            raise _invalid("file", f"Field required ({FILE_DESCRIPTION})", "missing")
        if not isinstance(upload, UploadFile):
            raise _invalid("file", "expected a file upload, got a text field")
        for name, value in values.items():
            if not isinstance(value, str):
                raise _invalid(name, "expected a text field, got a file")
        values = {k: v for k, v in values.items() if v.strip()}  # an empty field is no field
        model = _DefaultRouteFields if model_field else _Fields
        try:
            fields = model.model_validate(values)
        except ValidationError as e:
            raise RequestValidationError(
                [{**err, "loc": ("body", *err["loc"])} for err in e.errors()]
            ) from e
        male, err = parse_sex(fields.sex, is_male_column=False)
        if err:
            raise _invalid("sex", err)
        _age_in_table(fields.age_months, bool(male), sd_table)
        data = await upload.read()
        return PredictForm(
            data=data,
            filename=upload.filename or "",
            male=bool(male),
            age_months=fields.age_months,
            overlay=fields.overlay,
            reject_flagged=fields.reject_flagged,
            echo_filename=fields.echo_filename,
            model=getattr(fields, "model", None),
        )
    finally:
        await form.close()


def request_body_schema(model_field: bool) -> dict[str, Any]:
    """The OpenAPI ``requestBody`` of a prediction route (the form is parsed by hand, so FastAPI
    cannot derive it)."""
    model = _DefaultRouteFields if model_field else _Fields
    schema = model.model_json_schema()
    schema["properties"] = {
        "file": {"type": "string", "format": "binary", "description": FILE_DESCRIPTION},
        **schema["properties"],
    }
    schema["required"] = ["file", *schema.get("required", [])]
    schema.pop("additionalProperties", None)
    return {
        "required": True,
        "content": {"multipart/form-data": {"schema": schema}},
    }
