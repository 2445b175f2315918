"""Config: our keys, _BASE_ inheritance, and clear errors for the mistakes users make."""

import pytest
from detectron2.config import get_cfg

from boneage_d2 import add_boneage_config
from boneage_d2.engine import ConfigError, load_config, validate_config
from tests.fixtures import CONFIGS


def test_add_boneage_config_is_idempotent_and_namespaced():
    cfg = add_boneage_config(get_cfg())
    cfg.BONEAGE.ORDINAL.NUM_RANKS = 99
    add_boneage_config(cfg)
    assert cfg.BONEAGE.ORDINAL.NUM_RANKS == 99
    assert set(cfg.keys()) - set(get_cfg().keys()) == {"BONEAGE"}


def test_base_inheritance_and_overrides():
    cfg = load_config(str(CONFIGS / "Global/R50-l1.yaml"), ["SOLVER.MAX_ITER", "7"])
    assert cfg.BONEAGE.HEAD.NAME == "RegressionAgeHead"  # own file
    assert cfg.BONEAGE.SOLVER.OPTIMIZER == "Adam"  # grandparent Base-Global.yaml
    assert cfg.MODEL.RESNETS.NORM == "GN"  # Base-BoneAge.yaml
    assert cfg.SOLVER.MAX_ITER == 7  # command line


def test_config_key_typo_names_the_key_and_suggests(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        f'_BASE_: "{CONFIGS / "Base-BoneAge.yaml"}"\nBONEAGE:\n  ORDINAL:\n    NUM_RANK: 10\n'
    )
    with pytest.raises(
        ConfigError, match=r"BONEAGE\.ORDINAL\.NUM_RANK.*did you mean BONEAGE\.ORDINAL\.NUM_RANKS"
    ):
        load_config(str(bad))
    with pytest.raises(ConfigError, match="command line.*SOLVER.BASE_LRR"):
        load_config(None, ["SOLVER.BASE_LRR", "0.1"])


def test_missing_config_file():
    with pytest.raises(ConfigError, match="config file not found: nope.yaml"):
        load_config("nope.yaml")


def test_unknown_architecture_lists_registered_ones():
    cfg = load_config(None, ["MODEL.META_ARCHITECTURE", "ALANett"])
    with pytest.raises(ConfigError, match="ALANett.*GlobalBoneAgeRegressor"):
        validate_config(cfg)


def test_missing_weights_file(tmp_path):
    cfg = load_config(None, ["MODEL.WEIGHTS", str(tmp_path / "none.pth")])
    with pytest.raises(ConfigError, match="none.pth.*file not found"):
        validate_config(cfg)


@pytest.mark.parametrize("model", ["ALA-Net/paper-imagenet", "HandSeg-RAN/paper-imagenet"])
def test_imagenet_weights_that_cannot_be_downloaded_name_the_local_alternative(model, monkeypatch):
    """The paper-imagenet configs name Detectron2's MSRA weights; Detectron2 fetches them where
    there is internet. A failed download is a ConfigError naming the local-file routes."""
    from urllib.error import URLError

    from detectron2.utils.file_io import PathManager

    asked = []

    def offline(path, **kwargs):
        asked.append(path)
        raise URLError("Name or service not known")

    monkeypatch.setattr(PathManager, "get_local_path", offline)
    cfg = load_config(str(CONFIGS / f"{model}.yaml"))
    cfg.DATASETS.TRAIN, cfg.DATASETS.TEST = (), ()
    with pytest.raises(ConfigError) as err:
        validate_config(cfg)
    assert asked == ["detectron2://ImageNetPretrained/MSRA/R-50.pkl"]
    message = str(err.value)
    for part in ("could not be downloaded", "local path", "convert_torchvision_resnet.py"):
        assert part in message, message
    assert cfg.MODEL.RESNETS.NORM == "FrozenBN" and cfg.MODEL.RESNETS.STRIDE_IN_1X1
    assert list(cfg.MODEL.PIXEL_STD) == [1.0, 1.0, 1.0]


def test_batchnorm_regressor_needs_two_images_per_process():
    demo = str(CONFIGS / "HandSeg-RAN/R18-phantom-demo.yaml")
    cfg = load_config(demo, ["SOLVER.IMS_PER_BATCH", "1", "BONEAGE.RAN.NORM", "BN"])
    cfg.DATASETS.TRAIN, cfg.DATASETS.TEST = (), ()  # no converted data needed for this check
    with pytest.raises(ConfigError, match="RAN.NORM='BN' needs >= 2 images.*IMS_PER_BATCH=1"):
        validate_config(cfg)
    validate_config(cfg, training=False)  # inference runs one image at a time
    cfg.BONEAGE.RAN.NORM = "GN"
    validate_config(cfg)


def test_unregistered_dataset_suggests_close_name():
    cfg = load_config(None, ["DATASETS.TRAIN", "('phantom_boneage_trian',)"])
    with pytest.raises(
        ConfigError, match="phantom_boneage_trian.*did you mean phantom_boneage_train"
    ):
        validate_config(cfg)


def test_every_config_loads():
    for path in sorted(CONFIGS.rglob("*.yaml")):
        load_config(str(path))


def _flat(cfg, prefix=""):
    out = {}
    for k, v in cfg.items():
        if hasattr(v, "items"):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def test_ablation_rows_apply_their_paper_yaml_delta_at_demo_scale():
    """tools/alanet_ablation.py runs each Table 1/2 row at demo scale from the paper-scale yaml's
    own keys: one delta, defined once, the same at both scales."""
    from tests.cli import load_tool

    ablation = load_tool("alanet_ablation")
    demo = _flat(load_config(str(ablation.DEMO)))
    paper = _flat(load_config(str(CONFIGS / "ALA-Net/paper.yaml")))
    for name, (_, yaml_name) in ablation.ROWS.items():
        if yaml_name is None:
            continue
        opts = ablation.row_opts(name)
        assert opts, name
        row_demo = _flat(load_config(str(ablation.DEMO), opts))
        row_paper = _flat(load_config(str(CONFIGS / "ALA-Net" / yaml_name)))
        changed_demo = {k for k in demo if demo[k] != row_demo[k]}
        changed_paper = {k for k in paper if paper[k] != row_paper[k]} - {"OUTPUT_DIR"}
        assert changed_demo == changed_paper, name
        assert all(row_demo[k] == row_paper[k] for k in changed_demo), name
