"""The package must work without Detectron2's compiled ``_C`` extension (absent on Python 3.11)."""

import subprocess
import sys
import textwrap

from tests.fixtures import REPO

SCRIPT = textwrap.dedent(
    """
    import importlib.abc, sys

    class BlockC(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "detectron2._C":
                raise ImportError("detectron2._C blocked by test")

    sys.meta_path.insert(0, BlockC())
    sys.modules.pop("detectron2._C", None)

    import torch
    import boneage_d2
    from detectron2.modeling import build_model
    from detectron2.utils.events import EventStorage
    from boneage_d2.engine import load_config

    cfg = load_config("configs/Global/R18-phantom-demo.yaml",
                      ["BONEAGE.INPUT.LONG_SIDE_TRAIN", "64", "BONEAGE.INPUT.LONG_SIDE_TEST", "64"])
    model = build_model(cfg)
    x = [{"image": torch.zeros(3, 64, 48, dtype=torch.uint8), "male": True, "boneage": 90.0}]
    with EventStorage():
        sum(model(x).values()).backward()
    model.eval()
    with torch.no_grad():
        print("PRED", float(model(x)[0]["boneage"]))
    assert "detectron2._C" not in sys.modules or sys.modules["detectron2._C"] is None
    """
)


def test_build_train_and_predict_without_compiled_ops():
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "PRED" in proc.stdout
