"""boneage-d2: Detectron2 extension for pediatric hand bone-age assessment."""

from setuptools import find_packages, setup

setup(
    name="boneage_d2",
    version="0.1.0",
    description="Detectron2 components for hand bone-age assessment (ALA-Net, HandSeg-RAN)",
    packages=find_packages(include=["boneage_d2", "boneage_d2.*"]),
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
        "test": ["pytest", "pytest-timeout", "ruff", "hypothesis", "pydicom"],
        "dicom": ["pydicom"],
    },
    entry_points={
        "console_scripts": [
            "boneage-train=boneage_d2.tools.train_net:cli",
            "boneage-convert-rsna=boneage_d2.tools.convert_rsna:cli",
            "boneage-make-phantom=boneage_d2.tools.make_phantom:cli",
            "boneage-visualize-data=boneage_d2.tools.visualize_data:cli",
            "boneage-benchmark=boneage_d2.tools.benchmark:cli",
            "boneage-predict=boneage_d2.tools.predict:cli",
        ]
    },
)
