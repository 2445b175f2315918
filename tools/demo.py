#!/usr/bin/env python
"""The main job: phantom data -> convert -> train -> evaluate -> report (see boneage_d2/tools/demo.py)."""

from boneage_d2.tools.demo import cli

if __name__ == "__main__":
    cli()
