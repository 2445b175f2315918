#!/usr/bin/env python
"""Inference, training, data-loader and conversion costs (see boneage_d2/tools/benchmark.py)."""

from boneage_d2.tools.benchmark import cli

if __name__ == "__main__":
    cli()
