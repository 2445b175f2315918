#!/usr/bin/env python
"""Draw dataset ground truth (see boneage_d2/tools/visualize_data.py)."""

from boneage_d2.tools.visualize_data import cli

if __name__ == "__main__":
    cli()
