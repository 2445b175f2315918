#!/usr/bin/env python
"""The main job: phantom -> convert -> train -> evaluate -> report (boneage_d2/tools/demo.py)."""

from boneage_d2.tools.demo import cli

if __name__ == "__main__":
    cli()
