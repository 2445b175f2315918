"""The real-film recipe on a few real RSNA films: split, convert with derived masks (and pseudo
ROIs for ALA-Net), one training iteration of each model's R18-rsna-real config, prediction.
Skips when the real films beside the checkout are absent."""

import csv
import json

import pytest
from detectron2.engine import default_argument_parser

from boneage_d2.data import register_boneage_split
from tests.cli import load_tool
from tests.fixtures import CONFIGS, RSNA_REAL

pytestmark = [pytest.mark.slow, pytest.mark.rsna_sample]

MODELS = {
    "global": CONFIGS / "Global/R18-rsna-real.yaml",
    "alanet": CONFIGS / "ALA-Net/R18-rsna-real.yaml",
    "handseg": CONFIGS / "HandSeg-RAN/R18-rsna-real.yaml",
}
FAST = [
    "SOLVER.IMS_PER_BATCH",
    "2",
    "SOLVER.MAX_ITER",
    "1",
    "SOLVER.WARMUP_ITERS",
    "1",
    "DATALOADER.NUM_WORKERS",
    "0",
    "BONEAGE.EVAL.BOOTSTRAP_SAMPLES",
    "0",
]


@pytest.fixture(scope="module")
def real_split(tmp_path_factory):
    if not (RSNA_REAL / "boneage-training-dataset.csv").is_file():
        pytest.skip("no real RSNA films beside the checkout")
    root = tmp_path_factory.mktemp("real")
    with open(RSNA_REAL / "boneage-training-dataset.csv", newline="") as f:
        rows = list(csv.reader(f))
    (root / "labels.csv").write_text("\n".join(",".join(r) for r in rows[:9]) + "\n")
    load_tool("split_labels").main(
        ["--labels", str(root / "labels.csv"), "--output-dir", str(root / "labels")]
    )
    convert = load_tool("convert_rsna").main
    for split in ("train", "val"):
        args = ["--labels", str(root / "labels" / f"{split}.csv"), "--images"]
        args += [str(RSNA_REAL / "images"), "--derive-masks", "--workers", "1"]
        assert convert(args + ["--output", str(root / "coco" / f"{split}.json")]) == 0
        register_boneage_split(f"tiny_real_{split}", root / "coco" / f"{split}.json")
    return root


def test_each_model_trains_one_iteration_and_predicts_on_real_films(real_split, tmp_path):
    train = json.loads((real_split / "coco/train.json").read_text())
    assert train["images"] and all(a["category_id"] == 1 for a in train["annotations"])
    assert all(a.get("segmentation") for a in train["annotations"])  # derived masks
    train_net, predict = load_tool("train_net"), load_tool("predict")
    films = [str(real_split / "coco" / im["file_name"]) for im in train["images"][:2]]
    for name, config in MODELS.items():
        out = tmp_path / name
        opts = FAST + ["DATASETS.TRAIN", "('tiny_real_train',)", "DATASETS.TEST"]
        opts += ["('tiny_real_val',)", "OUTPUT_DIR", str(out)]
        args = default_argument_parser().parse_args(["--config-file", str(config), *opts])
        results = train_net.main(args)
        assert results["boneage"]["num_images"] >= 1, name
        argv = ["--config-file", str(config), "--weights", str(out / "model_final.pth")]
        argv += ["--output-dir", str(out / "pred"), "--num-workers", "0", "--sex", "M"]
        assert predict.main(argv + ["--input", *films]) == 0, name
        with open(out / "pred/predictions.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == 2 and all(0 <= float(r["boneage_months"]) <= 240 for r in rows)
