"""``boneage-serve``: load the models once, then serve them over HTTP with uvicorn.

    boneage-serve \\
        --model alanet=outputs/demo/alanet/config.yaml:outputs/demo/alanet/model_final.pth \\
        --model global=outputs/demo/global/config.yaml:outputs/demo/global/model_final.pth \\
        --host 127.0.0.1 --port 8000

The first ``--model`` is the default of ``POST /predict``. Endpoints, limits and the
concurrency design: docs/service.md; the OpenAPI schema is at ``/openapi.json``, docs at ``/docs``.
"""

from __future__ import annotations

import argparse
import sys

from ..utils.argtypes import int_at_least, number_above
from .app import DEFAULT_MAX_UPLOAD_MB
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
        help="a model to serve (repeatable; the first is the default)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on [127.0.0.1]")
    p.add_argument("--port", type=int_at_least(0), default=8000, help="TCP port [8000]")
    p.add_argument(
        "--max-upload-mb",
        type=number_above(0, inclusive=False),
        default=DEFAULT_MAX_UPLOAD_MB,
        help=f"largest request body accepted; larger ones get 413 [{DEFAULT_MAX_UPLOAD_MB:g}]",
    )
    p.add_argument("--threads", type=int_at_least(1), help="torch CPU threads [torch's default]")
    p.add_argument("--log-level", default="info", help="uvicorn log level [info]")
    return p


def main(argv: list[str] | None = None) -> int:
    """Load the models and serve until interrupted; 2 on a bad model spec or config."""
    args = build_parser().parse_args(argv)
    import torch
    import uvicorn

    from ..engine import ConfigError
    from .app import create_app
    from .models import load_models

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        models = load_models(args.model)
    except (ConfigError, ValueError, OSError) as e:
        print(f"boneage-serve: error: {e}", file=sys.stderr)
        return 2
    app = create_app(models, max_upload_mb=args.max_upload_mb)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


def cli() -> None:
    """Console-script entry point."""
    sys.exit(main())
