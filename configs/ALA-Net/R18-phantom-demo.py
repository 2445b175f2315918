"""LazyConfig twin of R18-phantom-demo.yaml (ALA-Net's 2-core CPU demo): the same model
(tests/modeling/test_lazy_configs.py builds both and compares), data, optimizer and schedule.
Train with ``boneage-lazy-train --config-file ALA-Net/R18-phantom-demo.py``."""

from ..common.data import dataloader
from ..common.models.alanet import model  # noqa: F401
from ..common.optim import Adam as optimizer  # noqa: F401
from ..common.schedule import lr_multiplier  # noqa: F401
from ..common.train import train

train.output_dir = "./output/alanet_r18_demo_lazy"
dataloader.evaluator.output_dir = "${train.output_dir}/inference"
