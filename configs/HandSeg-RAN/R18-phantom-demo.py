"""LazyConfig twin of R18-phantom-demo.yaml (HandSeg-RAN's 2-core CPU demo): the same model
(tests/modeling/test_lazy_configs.py builds both and compares), and its data (192-px long side,
hand masks, no augmentation), optimizer and schedule (1,200 iterations, evaluated every 300).
Train with ``boneage-lazy-train --config-file HandSeg-RAN/R18-phantom-demo.py``."""

from detectron2.config import LazyCall as L

from boneage_d2.data import LongSideResize

from ..common.data import dataloader
from ..common.models.handseg_ran import model  # noqa: F401
from ..common.optim import Adam as optimizer  # noqa: F401
from ..common.schedule import lr_multiplier
from ..common.train import train

dataloader.train.mapper.augmentations = [L(LongSideResize)(long_side=192)]
dataloader.train.mapper.use_masks = True
dataloader.train.num_workers = 1
dataloader.test.mapper.augmentations = [L(LongSideResize)(long_side=192)]
dataloader.test.mapper.use_masks = True
dataloader.test.num_workers = 1
dataloader.evaluator.output_dir = "${train.output_dir}/inference"

lr_multiplier.warmup_length = 50 / 1200
train.max_iter = 1200
train.checkpointer.period = 300
train.eval_period = 300
train.output_dir = "./output/handseg_ran_r18_demo_lazy"
