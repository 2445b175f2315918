"""``boneage-serve``: load the models once, then serve them over HTTP with uvicorn.

    boneage-serve \\
        --model alanet=outputs/demo/alanet/config.yaml:outputs/demo/alanet/model_final.pth \\
        --model global=outputs/demo/global/config.yaml:outputs/demo/global/model_final.pth \\
        --host 127.0.0.1 --port 8000
    boneage-serve --model alanet=outputs/demo/alanet/model_package   # a model package folder

The first ``--model`` is the default of ``POST /predict``. Endpoints, limits, API keys
(``--api-keys-file`` or ``$BONEAGE_API_KEYS``), backpressure and what is logged: docs/service.md;
the OpenAPI schema is at ``/openapi.json``, offline docs at ``/docs``.
"""

from __future__ import annotations

import argparse
import sys

from ..io.image_header import DEFAULT_MAX_PIXELS
from ..utils.argtypes import int_at_least, number_above
from .app import DEFAULT_MAX_UPLOAD_MB
from .auth import API_KEYS_ENV
from .backpressure import DEFAULT_QUEUE_SIZE, DEFAULT_REQUEST_TIMEOUT_S
from .models import parse_model_spec

__all__ = ["build_parser", "cli", "main"]


def _spec(text: str):
    try:
        return parse_model_spec(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``boneage-serve``."""
    p = argparse.ArgumentParser(
        prog="boneage-serve",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--model",
        action="append",
        type=_spec,
        required=True,
        metavar="NAME=CONFIG_YAML:WEIGHTS",
        help="a model to serve (repeatable; the first is the default); NAME=PACKAGE_DIR for a "
        "model package (train_net's OUTPUT_DIR/model_package)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on [127.0.0.1]")
    p.add_argument("--port", type=int_at_least(0), default=8000, help="TCP port [8000]")
    p.add_argument(
        "--max-upload-mb",
        type=number_above(0, inclusive=False),
        default=DEFAULT_MAX_UPLOAD_MB,
        help=f"largest request body accepted; larger ones get 413 [{DEFAULT_MAX_UPLOAD_MB:g}]",
    )
    p.add_argument(
        "--max-pixels",
        type=int_at_least(1, "a pixel count"),
        default=DEFAULT_MAX_PIXELS,
        help="refuse (413) an image whose header declares more pixels, before decoding "
        f"[{DEFAULT_MAX_PIXELS:,}]",
    )
    p.add_argument(
        "--api-keys-file",
        metavar="FILE",
        help=f"require an API key: one per line (also ${API_KEYS_ENV}, comma-separated); "
        "sent as 'Authorization: Bearer KEY' or 'X-API-Key: KEY' [no authentication]",
    )
    p.add_argument(
        "--queue-size",
        type=int_at_least(0, "a queue size"),
        default=DEFAULT_QUEUE_SIZE,
        help="requests that may wait per model besides the running one; more get 503 "
        f"[{DEFAULT_QUEUE_SIZE}]",
    )
    p.add_argument(
        "--request-timeout",
        type=number_above(0, inclusive=False),
        default=DEFAULT_REQUEST_TIMEOUT_S,
        help=f"seconds a request may wait for its model; then 503 [{DEFAULT_REQUEST_TIMEOUT_S:g}]",
    )
    p.add_argument(
        "--max-connections",
        type=int_at_least(1, "a connection count"),
        default=64,
        help="concurrent connections before uvicorn answers 503 (bounds the bodies held in "
        "memory: this x --max-upload-mb) [64]",
    )
    p.add_argument("--threads", type=int_at_least(1), help="torch CPU threads [torch's default]")
    p.add_argument("--log-level", default="info", help="uvicorn log level [info]")
    return p


def main(argv: list[str] | None = None) -> int:
    """Load the models and serve until interrupted; 2 on a bad model spec, config or key."""
    args = build_parser().parse_args(argv)
    import torch
    import uvicorn

    from ..engine import ConfigError
    from .app import create_app
    from .auth import load_api_keys
    from .models import load_models

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        keys = load_api_keys(args.api_keys_file)
        models = load_models(args.model)
    except (ConfigError, ValueError, OSError) as e:
        print(f"boneage-serve: error: {e}", file=sys.stderr)
        return 2
    app = create_app(
        models,
        max_upload_mb=args.max_upload_mb,
        api_keys=keys,
        queue_size=args.queue_size,
        request_timeout_s=args.request_timeout,
        max_pixels=args.max_pixels,
    )
    if not keys and args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"boneage-serve: warning: listening on {args.host} without API keys "
            f"(--api-keys-file or ${API_KEYS_ENV}); docs/service.md, Security and privacy",
            file=sys.stderr,
        )
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        limit_concurrency=args.max_connections,
    )
    return 0


def cli() -> None:
    """Console-script entry point."""
    sys.exit(main())
