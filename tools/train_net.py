#!/usr/bin/env python
"""Train / evaluate bone-age models with Detectron2 (see boneage_d2/tools/train_net.py)."""

from boneage_d2.tools.train_net import cli

if __name__ == "__main__":
    cli()
