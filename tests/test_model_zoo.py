"""boneage_d2.model_zoo: the packaged configs by name, the same as the checkout's files."""

from __future__ import annotations

from pathlib import Path

import pytest
from detectron2.config import get_cfg

from boneage_d2 import add_boneage_config, model_zoo
from boneage_d2.engine import ConfigError, load_config
from tests.fixtures import CONFIGS


def test_names_are_the_checkout_configs():
    names = model_zoo.list_configs()
    on_disk = sorted(p.relative_to(CONFIGS).as_posix() for p in CONFIGS.rglob("*.yaml"))
    assert [n for n in names if n.endswith(".yaml")] == on_disk
    assert "ALA-Net/paper.yaml" in names and "Base-BoneAge.yaml" in names
    assert Path(model_zoo.get_config_file("ALA-Net/paper.yaml")) == CONFIGS / "ALA-Net/paper.yaml"
    assert model_zoo.get_config_file("configs/Global/R50-l1.yaml").endswith("Global/R50-l1.yaml")


@pytest.mark.parametrize("name", ["ALA-Net/paper.yaml", "HandSeg-RAN/R18-phantom-demo.yaml"])
def test_get_config_resolves_bases_and_adds_the_boneage_keys(name):
    cfg = model_zoo.get_config(name)
    assert cfg.BONEAGE.HEAD.NAME  # add_boneage_config applied
    from_file = add_boneage_config(get_cfg())
    from_file.merge_from_file(str(CONFIGS / name))
    assert cfg.dump() == from_file.dump()  # the same _BASE_ chain, resolved


def test_every_yaml_config_loads_by_name():
    for name in model_zoo.list_configs():
        if name.endswith(".yaml"):
            assert model_zoo.get_config(name).MODEL.META_ARCHITECTURE, name


def test_lazy_configs_are_listed_and_load():
    names = model_zoo.list_configs()
    assert "HandSeg-RAN/R18-phantom-demo.py" in names
    assert not any(n.startswith("common/") for n in names)  # the pieces they import
    assert model_zoo.get_config("Global/R18-phantom-demo.py").train.max_iter == 1500


def test_unknown_names_are_clear_errors():
    with pytest.raises(model_zoo.UnknownConfigError, match="did you mean ALA-Net/paper.yaml"):
        model_zoo.get_config("ALA-Net/papr.yaml")
    with pytest.raises(model_zoo.UnknownConfigError, match="neither a file nor a config"):
        model_zoo.get_config_file("../setup.py")  # never outside the configs folder


def test_load_config_takes_names_and_paths(tmp_path, monkeypatch):
    by_name = load_config("Global/R18-phantom-demo.yaml", ["SOLVER.MAX_ITER", "7"])
    assert by_name.SOLVER.MAX_ITER == 7 and by_name.MODEL.RESNETS.DEPTH == 18
    # An existing file of the same name wins over the packaged config.
    (tmp_path / "Global").mkdir()
    (tmp_path / "Global/R18-phantom-demo.yaml").write_text("SOLVER:\n  MAX_ITER: 3\n")
    monkeypatch.chdir(tmp_path)
    assert load_config("Global/R18-phantom-demo.yaml").SOLVER.MAX_ITER == 3
    with pytest.raises(ConfigError, match=r"not found: Global/R18-demo.yaml \(packaged configs"):
        load_config("Global/R18-demo.yaml")
