#!/usr/bin/env python
"""Predict bone age with a trained model (see boneage_d2/tools/predict.py)."""

from boneage_d2.tools.predict import cli

if __name__ == "__main__":
    cli()
