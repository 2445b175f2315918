"""The bone-age web service: FastAPI over loaded ``BoneAgePredictor`` s, served by uvicorn.

    boneage-serve --model alanet=outputs/demo/alanet/config.yaml:outputs/demo/alanet/model_final.pth

See docs/service.md for the endpoints, limits and the concurrency design. FastAPI, uvicorn and
python-multipart are the ``serve`` extra (``pip install -e '.[serve]'``).
"""

from .app import DEFAULT_MAX_UPLOAD_MB, create_app
from .inference import UndecodableImage, predict_upload
from .models import ModelSpec, ServedModel, load_models, parse_model_spec
from .server import LiveServer, free_port

__all__ = [
    "DEFAULT_MAX_UPLOAD_MB",
    "LiveServer",
    "ModelSpec",
    "ServedModel",
    "UndecodableImage",
    "create_app",
    "free_port",
    "load_models",
    "parse_model_spec",
    "predict_upload",
]
