"""Serve trained bone-age models over HTTP (FastAPI + uvicorn); also installed as ``boneage-serve``.

    python tools/serve.py \\
        --model alanet=outputs/demo/alanet/config.yaml:outputs/demo/alanet/model_final.pth \\
        --port 8000

Endpoints, limits and the concurrency design: docs/service.md (and ``/docs`` on the server).
"""

from boneage_d2.serve.cli import build_parser, cli, main

__all__ = ["build_parser", "cli", "main"]

if __name__ == "__main__":
    cli()
