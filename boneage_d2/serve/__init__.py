"""The bone-age web service: FastAPI over loaded ``BoneAgePredictor`` s, served by uvicorn.

    boneage-serve --model alanet=outputs/demo/alanet/config.yaml:outputs/demo/alanet/model_final.pth

See docs/service.md for the endpoints, limits, authentication, backpressure and what is
logged. FastAPI, uvicorn, python-multipart and swagger-ui-bundle-v2 (offline ``/docs``) are the
``serve`` extra (``pip install -e '.[serve]'``).
"""

from .app import DEFAULT_MAX_UPLOAD_MB, create_app
from .auth import load_api_keys
from .backpressure import ModelBusy, ModelQueue
from .inference import UndecodableImage, predict_upload
from .models import ModelSpec, ServedModel, load_models, parse_model_spec
from .server import LiveServer, free_port

__all__ = [
    "DEFAULT_MAX_UPLOAD_MB",
    "LiveServer",
    "ModelBusy",
    "ModelQueue",
    "ModelSpec",
    "ServedModel",
    "UndecodableImage",
    "create_app",
    "free_port",
    "load_api_keys",
    "load_models",
    "parse_model_spec",
    "predict_upload",
]
