"""HandSegBoneAgeRCNN (Model A): losses, outputs, mask gating, fallbacks, every config."""

import json
import math
import re
from pathlib import Path

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from detectron2.data import DatasetCatalog
from detectron2.engine import default_argument_parser
from detectron2.modeling import build_model
from detectron2.structures import BitMasks, Boxes, Instances
from detectron2.utils.events import EventStorage

from boneage_d2.data import register_boneage_split
from boneage_d2.engine import BoneAgeTrainer, build_boneage_optimizer, load_config
from boneage_d2.modeling.hand_crops import crop_and_resize, resample_box_masks, square_boxes
from boneage_d2.modeling.handseg_rcnn import NO_HAND_FLAG
from boneage_d2.vis.attention import draw_attention_maps
from tests.cli import load_tool
from tests.fixtures import CONFIGS, write_tiny_dataset

CONFIG_DIR = CONFIGS / "HandSeg-RAN"
DEMO = str(CONFIG_DIR / "R18-phantom-demo.yaml")
DETECTOR_LOSSES = {"loss_rpn_cls", "loss_rpn_loc", "loss_cls", "loss_box_reg", "loss_mask"}
MODULES = ["Att1", "Att2", "Att3"]  # the demo RAN: one module per stage
TINY = [
    "BONEAGE.INPUT.LONG_SIDE_TRAIN",
    "64",
    "BONEAGE.INPUT.LONG_SIDE_TEST",
    "64",
    "BONEAGE.INPUT.RANDOM_SCALE",
    "(1.0, 1.0)",
    "BONEAGE.RAN.INPUT_SIZE",
    "32",
    "BONEAGE.RAN.NORM",  # these tests train on one crop at a time; BatchNorm needs two
    "GN",
    "MODEL.DEVICE",
    "cpu",
]


def _input(h, w, boxes=(), male=True, age=100.0, with_instances=True):
    """A model input with rectangular hand masks at ``boxes`` (x0, y0, x1, y1), originals 2x."""
    g = torch.Generator().manual_seed(h * w)
    x = {
        "image": torch.randint(0, 255, (3, h, w), dtype=torch.uint8, generator=g),
        "male": male,
        "boneage": age,
        "height": 2 * h,
        "width": 2 * w,
        "image_id": h * 1000 + w,
    }
    if with_instances:
        masks = torch.zeros((len(boxes), h, w), dtype=torch.bool)
        for k, (x0, y0, x1, y1) in enumerate(boxes):
            masks[k, y0:y1, x0:x1] = True
        inst = Instances((h, w))
        inst.gt_masks = BitMasks(masks)
        inst.gt_boxes = inst.gt_masks.get_bounding_boxes()
        inst.gt_classes = torch.zeros(len(boxes), dtype=torch.int64)
        x["instances"] = inst
    return x


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(load_config(DEMO, TINY))


def _train_losses(model, batch):
    model.train()
    with EventStorage() as storage:
        losses = model(batch)
    return losses, storage


def _infer(model, batch):
    model.eval()
    with torch.no_grad():
        return model(batch)


# ------------------------------------------------------------------ crops and gating
def test_crop_and_resize_reads_the_box():
    img = torch.zeros(1, 1, 20, 40)
    img[..., 20:] = 255.0
    left = crop_and_resize(img, torch.tensor([[0.0, 0.0, 18.0, 18.0]]), 8)  # bilinear: keep
    right = crop_and_resize(img, torch.tensor([[22.0, 0.0, 40.0, 18.0]]), 8)  # off the edge
    assert left.shape == (1, 1, 8, 8) and left.abs().max() == 0 and (right == 255).all()


def test_square_boxes_and_box_mask_resampling():
    sq = square_boxes(torch.tensor([[10.0, 20.0, 30.0, 60.0]]))
    assert torch.allclose(sq, torch.tensor([[0.0, 20.0, 40.0, 60.0]]))
    masks = torch.rand(2, 7, 7)
    boxes = torch.tensor([[3.0, 4.0, 17.0, 18.0], [0.0, 0.0, 7.0, 7.0]])
    assert torch.allclose(resample_box_masks(masks, boxes, boxes, 7), masks, atol=1e-5)
    # A target box twice as wide: the left half of the grid reads the mask, the right half zero.
    wide = torch.tensor([[3.0, 4.0, 31.0, 18.0], [0.0, 0.0, 14.0, 7.0]])
    out = resample_box_masks(torch.ones(2, 7, 7), boxes, wide, 8)
    assert (out[:, 1:-1, :3] > 0.99).all() and (out[:, :, 5:] == 0).all()


def test_pixels_outside_the_hand_become_background(model, monkeypatch):
    monkeypatch.setattr(model, "background_value", 7.0)
    image = torch.full((3, 40, 40), 200.0)
    masks = torch.zeros((1, 40, 40))
    masks[0, 10:30, 15:25] = 1.0
    boxes = torch.tensor([[15.0, 10.0, 25.0, 30.0]])
    crops, crop_boxes = model._hand_inputs(image, boxes, masks, None)
    assert torch.allclose(crop_boxes, torch.tensor([[10.0, 10.0, 30.0, 30.0]]))  # squared
    s = model.input_size
    assert crops.shape == (1, 3, s, s)
    assert torch.allclose(crops[0, :, s // 2, s // 2], torch.tensor(200.0))
    assert torch.allclose(crops[0, :, s // 2, 0], torch.tensor(7.0))  # beside the hand


# ------------------------------------------------------------------ training
def test_train_returns_detector_losses_and_loss_age(model, monkeypatch):
    monkeypatch.setattr(model, "train_all_hands", True)  # the demo config: the largest only
    batch = [
        _input(64, 48, [(5, 5, 30, 60), (32, 40, 48, 64)]),  # two hands
        _input(48, 64, []),  # empty instances
        _input(50, 37, with_instances=False),  # no instances at all
    ]
    losses, storage = _train_losses(model, batch)
    assert set(losses) == DETECTOR_LOSSES | {"loss_age"}
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert model.regressor.stem[0].weight.grad is not None
    latest = storage.latest()
    assert latest["handseg/regressor_samples"][0] == 4  # 2 hands + 2 whole-image fallbacks
    assert latest["handseg/whole_image_fraction"][0] == pytest.approx(2 / 3)
    model.zero_grad()


def test_train_largest_hand_only(model, monkeypatch):
    monkeypatch.setattr(model, "train_all_hands", False)
    _, storage = _train_losses(model, [_input(64, 48, [(5, 5, 30, 60), (32, 40, 48, 64)])])
    assert storage.latest()["handseg/regressor_samples"][0] == 1


@pytest.mark.parametrize(
    "source,gating,reaches_mask_head",
    [("gt", "hard", False), ("predicted", "hard", False), ("predicted", "soft", True)],
)
def test_what_the_age_loss_trains(model, monkeypatch, source, gating, reaches_mask_head):
    monkeypatch.setattr(model, "train_mask_source", source)
    monkeypatch.setattr(model, "mask_gating", gating)
    model.zero_grad()
    losses, _ = _train_losses(model, [_input(64, 48, [(5, 5, 30, 60)])])
    losses["loss_age"].backward()
    predictor = model.roi_heads.mask_head.predictor.weight
    grad = predictor.grad.abs().sum().item() if predictor.grad is not None else 0.0
    assert (grad > 0) == reaches_mask_head
    assert model.regressor.stem[0].weight.grad.abs().sum() > 0
    model.zero_grad()


def test_predicted_masks_with_an_image_without_hands(model, monkeypatch):
    """The mask head runs at the ground-truth boxes of the images that have hands, while an image
    without hands in the same batch falls back to the whole image (the pooler gets one box list
    per image)."""
    monkeypatch.setattr(model, "train_mask_source", "predicted")
    batch = [_input(64, 48, [(5, 5, 30, 60)]), _input(48, 64, []), _input(64, 64, [(2, 2, 40, 60)])]
    losses, storage = _train_losses(model, batch)
    assert torch.isfinite(losses["loss_age"])
    assert storage.latest()["handseg/regressor_samples"][0] == 3
    assert storage.latest()["handseg/whole_image_fraction"][0] == pytest.approx(1 / 3)


def test_predicted_masks_need_hand_roi_heads():
    opts = TINY + ["MODEL.ROI_HEADS.NAME", "StandardROIHeads"]
    opts += ["BONEAGE.HANDSEG.TRAIN_MASK_SOURCE", "predicted"]
    with pytest.raises(ValueError, match="HandROIHeads"):
        build_model(load_config(DEMO, opts))


def test_no_segmentation_ablation_trains_on_whole_images(model, monkeypatch):
    monkeypatch.setattr(model, "use_segmentation", False)
    losses, storage = _train_losses(model, [_input(64, 48, [(5, 5, 30, 60)])])
    assert set(losses) == DETECTOR_LOSSES | {"loss_age"}  # the detector still trains
    assert storage.latest()["handseg/whole_image_fraction"][0] == 1.0


# ------------------------------------------------------------------ inference
def test_eval_returns_instances_boneage_flags_and_attention_maps(model):
    out = _infer(model, [_input(64, 48), _input(40, 64)])
    assert len(out) == 2
    for o, (h, w) in zip(out, [(64, 48), (40, 64)]):
        inst = o["instances"]
        assert inst.image_size == (2 * h, 2 * w)  # original image pixels
        for field in ("pred_boxes", "scores", "pred_classes", "pred_masks", "boneage"):
            assert inst.has(field), field
        assert inst.pred_masks.shape[1:] == (2 * h, 2 * w)
        assert o["boneage"].shape == () and math.isfinite(o["boneage"].item())
        assert isinstance(o["flags"], list)
        assert list(o["attention_maps"]) == MODULES
        assert all(m.dim() == 2 for m in o["attention_maps"].values())
        assert o["attention_box"].shape == (4,)


def test_attention_maps_can_be_drawn(model, monkeypatch):
    monkeypatch.setattr(model, "hand_score_thresh", 0.0)
    o = _infer(model, [_input(64, 48)])[0]
    image = np.random.default_rng(0).integers(0, 255, (128, 96), dtype=np.uint8)
    mask = o["instances"].pred_masks[int(o["instances"].scores.argmax())].numpy()
    row = draw_attention_maps(
        image, o["attention_maps"], o["attention_box"], mask, tile_size=64, title="age"
    )
    assert row.shape == (64, 64 * (1 + len(MODULES)), 3) and row.dtype == np.uint8


def test_given_boxes_without_scores(model):
    model.eval()
    boxes = Instances((64, 48))
    boxes.pred_boxes = Boxes(torch.tensor([[4.0, 4.0, 40.0, 60.0]]))
    boxes.pred_classes = torch.zeros(1, dtype=torch.int64)
    with torch.no_grad():
        o = model.inference([_input(64, 48)], detected_instances=[boxes])[0]
    assert torch.isfinite(o["instances"].boneage).all() and o["flags"] == []


def test_multi_hand_ages_and_top_scoring_image_age(model, monkeypatch):
    monkeypatch.setattr(model, "hand_score_thresh", 0.0)
    monkeypatch.setattr(model, "max_hands_test", 3)
    o = _infer(model, [_input(64, 48)])[0]
    inst = o["instances"]
    assert len(inst) >= 3  # a random-init detector finds plenty of "hands"
    assessed = torch.isfinite(inst.boneage)
    assert assessed.sum() == 3
    assert set(torch.topk(inst.scores, 3).indices.tolist()) == set(
        assessed.nonzero()[:, 0].tolist()
    )
    top = int(inst.scores.argmax())
    assert o["boneage"].item() == pytest.approx(inst.boneage[top].item())
    assert o["flags"] == []


def test_no_hand_found_falls_back_to_the_whole_image(model, monkeypatch):
    monkeypatch.setattr(model, "hand_score_thresh", 1.01)
    o = _infer(model, [_input(64, 48)])[0]
    assert o["flags"] == [NO_HAND_FLAG] and math.isfinite(o["boneage"].item())
    assert torch.isnan(o["instances"].boneage).all()
    # The whole image, squared: the attention box is centred on the original image.
    assert torch.allclose(o["attention_box"], torch.tensor([-16.0, 0.0, 112.0, 128.0]))
    # No detection at all (not even below the threshold): no crash either.
    monkeypatch.setattr(model.roi_heads.box_predictor, "test_score_thresh", 1.01)
    o = _infer(model, [_input(64, 48)])[0]
    assert len(o["instances"]) == 0 and o["flags"] == [NO_HAND_FLAG]


def test_no_segmentation_eval(model, monkeypatch):
    monkeypatch.setattr(model, "use_segmentation", False)
    monkeypatch.setattr(model, "hand_score_thresh", 0.0)
    o = _infer(model, [_input(64, 48)])[0]
    assert o["flags"] == [] and torch.isnan(o["instances"].boneage).all()
    assert len(o["instances"]) > 0 and math.isfinite(o["boneage"].item())


def test_detector_at_half_scale_regressor_at_full_size(model, monkeypatch):
    monkeypatch.setattr(model, "detector_scale", 0.5)
    monkeypatch.setattr(model, "pad_square_size", 32)
    det = model._detector_instances(_input(64, 48, [(4, 4, 30, 60)])["instances"])
    assert det.image_size == (32, 24)
    assert torch.allclose(det.gt_boxes.tensor, torch.tensor([[2.0, 2.0, 15.0, 30.0]]))
    assert det.gt_masks.tensor.shape == (1, 32, 24) and det.gt_masks.tensor.sum() == 13 * 28
    losses, storage = _train_losses(model, [_input(64, 48, [(5, 5, 30, 60)]), _input(48, 64)])
    assert set(losses) == DETECTOR_LOSSES | {"loss_age"}
    assert storage.latest()["handseg/regressor_samples"][0] == 2

    monkeypatch.setattr(model, "hand_score_thresh", 0.0)
    o = _infer(model, [_input(64, 48)])[0]
    inst = o["instances"]
    assert inst.pred_masks.shape[1:] == (128, 96)
    # The regressor read the top hand's (squared) box, mapped back to full size.
    top = inst.pred_boxes.tensor[int(inst.scores.argmax())]
    assert torch.allclose(o["attention_box"], square_boxes(top[None])[0], atol=1e-3)


def test_sex_enters_the_final_layer(model, monkeypatch):
    monkeypatch.setattr(model, "hand_score_thresh", 1.01)
    seen = []
    handle = model.age_head.register_forward_pre_hook(lambda m, i: seen.append(i[0]))
    try:
        male = _infer(model, [_input(64, 48, male=True)])[0]["boneage"]
        female = _infer(model, [_input(64, 48, male=False)])[0]["boneage"]
    finally:
        handle.remove()
    width = model.regressor.output_shape()["stage4"].channels
    assert seen[0].shape == (1, width + 1)
    assert seen[0][0, -1] == 1.0 and seen[1][0, -1] == -1.0
    assert torch.equal(seen[0][:, :-1], seen[1][:, :-1])
    assert male.item() != pytest.approx(female.item(), abs=1e-4)


def test_prediction_does_not_depend_on_the_batch(model, monkeypatch):
    monkeypatch.setattr(model, "hand_score_thresh", 0.0)
    alone = _infer(model, [_input(64, 48)])[0]
    batched = _infer(model, [_input(64, 48), _input(30, 64)])[0]
    # Padding-induced dependence (GroupNorm over a batch-sized canvas) moves ages by months; a
    # known residual of ~0.02 month remains from the mask gate's border sampling (issue note).
    assert alone["boneage"].item() == pytest.approx(batched["boneage"].item(), abs=0.05)
    assert torch.allclose(alone["instances"].scores, batched["instances"].scores, atol=1e-4)


# ------------------------------------------------------------------ configs end to end
def _ellipse_rle(bbox, h, w) -> dict:
    x, y, bw, bh = bbox
    yy, xx = np.mgrid[:h, :w] + 0.5
    inside = ((xx - x - bw / 2) / (bw / 2)) ** 2 + ((yy - y - bh / 2) / (bh / 2)) ** 2 <= 1
    rle = mask_util.encode(np.asfortranarray(inside.astype(np.uint8)))
    return {"size": [h, w], "counts": rle["counts"].decode()}


def _write_masked_dataset(root: Path) -> Path:
    """The tiny dataset with elliptic hand masks; image 1001 has a second hand, 1002 none."""
    path = write_tiny_dataset(root, num_images=6)
    data = json.loads(path.read_text())
    sizes = {im["id"]: (im["height"], im["width"]) for im in data["images"]}
    anns = [a for a in data["annotations"] if a["category_id"] != 1 or a["image_id"] != 1002]
    anns.append(
        {
            "id": 10_000,
            "image_id": 1001,
            "category_id": 1,
            "bbox": [50.0, 50.0, 25.0, 40.0],
            "area": 1000.0,
            "iscrowd": 0,
            "keypoints": [0.0] * 51,
            "num_keypoints": 0,
        }
    )
    for a in anns:
        if a["category_id"] == 1:
            a["segmentation"] = _ellipse_rle(a["bbox"], *sizes[a["image_id"]])
    data["annotations"] = anns
    path.write_text(json.dumps(data))
    return path


@pytest.fixture(scope="module")
def masked_dataset(tmp_path_factory) -> str:
    name = "tiny_handseg_train"
    if name not in DatasetCatalog.list():
        register_boneage_split(name, _write_masked_dataset(tmp_path_factory.mktemp("handseg")))
    return name


def _data_opts(dataset: str) -> list[str]:
    return TINY + [
        "DATASETS.TRAIN",
        f"('{dataset}',)",
        "DATASETS.TEST",
        f"('{dataset}',)",
        "SOLVER.IMS_PER_BATCH",
        "3",
        "DATALOADER.NUM_WORKERS",
        "0",
        "BONEAGE.INPUT.ROTATION_DEG",
        "0.0",
        "BONEAGE.INPUT.CROP_FRACTION",
        "1.0",
    ]


# Sampling sizes, not weights: the full-size heads with 512 ROIs/img cost ~60 s/iter on 2 cores.
FEW_ROIS = [
    "MODEL.RPN.POST_NMS_TOPK_TRAIN",
    "64",
    "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE",
    "16",
]


def _config_params():
    """Every config; the full-size (R50 + Attention-92) ones are slow on 2 cores (~20 s each)."""
    for path in sorted(CONFIG_DIR.glob("*.yaml")):
        slow = load_config(str(path)).MODEL.RESNETS.DEPTH >= 50
        yield pytest.param(path.name, marks=[pytest.mark.slow] if slow else [])


@pytest.mark.parametrize("config", list(_config_params()))
def test_every_config_builds_and_trains_one_iteration(config, masked_dataset):
    """Full-size models (R50-FPN + Attention-92 for the paper configs) at a tiny input."""
    torch.manual_seed(0)
    cfg = load_config(str(CONFIG_DIR / config), _data_opts(masked_dataset) + FEW_ROIS)
    model = build_model(cfg)
    if cfg.MODEL.RESNETS.DEPTH == 50:
        assert model.backbone.bottom_up.output_shape()["res5"].channels == 2048
        assert model.regressor.output_shape()["stage4"].channels == 2048
    optimizer = build_boneage_optimizer(cfg, model)
    batch = next(iter(BoneAgeTrainer.build_train_loader(cfg)))
    losses, _ = _train_losses(model, batch)
    assert set(losses) == DETECTOR_LOSSES | {"loss_age"}
    assert all(torch.isfinite(v) for v in losses.values()), losses
    sum(losses.values()).backward()
    optimizer.step()


@pytest.mark.slow
def test_train_net_trains_and_evaluates_hands_and_ages(masked_dataset, tmp_path):
    train_net = load_tool("train_net")

    opts = _data_opts(masked_dataset) + [
        "SOLVER.MAX_ITER",
        "4",
        "SOLVER.WARMUP_ITERS",
        "2",
        "TEST.EVAL_PERIOD",
        "2",
        "SOLVER.CHECKPOINT_PERIOD",
        "2",
        "BONEAGE.EVAL.BOOTSTRAP_SAMPLES",
        "0",
        "OUTPUT_DIR",
        str(tmp_path),
    ]
    args = default_argument_parser().parse_args(["--config-file", DEMO, *opts])
    results = train_net.main(args)
    assert results["boneage"]["num_images"] == 6
    assert "AP" in results["segm"] and "AP" in results["bbox"]


def test_crop_regressor_ablation_caches_masked_crops_and_reports_both_maes(
    masked_dataset, tmp_path, capsys
):
    ablation = load_tool("crop_regressor_ablation")
    cache = tmp_path / "inputs.pt"
    argv = ["--config-file", DEMO, "--cache", str(cache), "--iters", "2", "--batch", "2"]
    background = ["BONEAGE.HANDSEG.BACKGROUND_VALUE", "77.0"]
    assert ablation.main([*argv, *_data_opts(masked_dataset), *background]) == 0
    data = torch.load(cache)
    crops, whole = data["train"]["crop"], data["train"]["whole"]
    assert crops.dtype == torch.uint8 and crops.shape == (5, 1, 32, 32)  # image 1002: no hand
    assert whole.shape == crops.shape and len(data["val"]["age"]) == 5
    # The elliptic mask gates the crop: its corners are background, more of it than the film's.
    assert (crops[:, 0, 0, 0] == 77).all() and (crops[:, 0, 16, 16] != 77).all()
    assert (crops == 77).float().mean() > (whole == 77).float().mean() + 0.1
    line = capsys.readouterr().out
    assert re.search(
        r"ran on crop, 2 iterations of 2: val MAE [\d.]+ months \(mean predictor", line
    )
    # Reused from the cache: an unregistered dataset is never read.
    opts = [*_data_opts(masked_dataset), "DATASETS.TRAIN", "('no_such_split',)"]
    assert ablation.main([*argv, "--view", "whole", "--optimizer", "boneage", *opts]) == 0
    assert "ran on whole" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # a cache of another crop size is not silently reused
        ablation.main([*argv, *opts, "BONEAGE.RAN.INPUT_SIZE", "48"])
    assert "cached crops are 32 px, BONEAGE.RAN.INPUT_SIZE is 48" in capsys.readouterr().err


def test_crop_regressor_ablation_bad_inputs_are_clear_errors(tiny_dataset, tmp_path, capsys):
    ablation = load_tool("crop_regressor_ablation")
    argv = ["--cache", str(tmp_path / "inputs.pt"), "--iters", "1", "--batch", "2"]
    with pytest.raises(SystemExit):
        ablation.main(["--config-file", str(tmp_path / "none.yaml"), *argv])
    assert "config file not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        ablation.main(["--config-file", DEMO, *argv, "DATASETS.TRAIN", "('no_such_split',)"])
    assert "'no_such_split' (DATASETS.TRAIN/TEST) is not registered" in capsys.readouterr().err
    with pytest.raises(
        SystemExit, match=r"tiny_boneage_train: \S+/1000\.png: its hands have no masks"
    ):
        ablation.main(["--config-file", DEMO, *argv, *_data_opts(tiny_dataset)])
    assert not (tmp_path / "inputs.pt").exists()  # nothing half-written
