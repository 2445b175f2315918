"""LazyConfig data: the phantom splits through ``BoneAgeDatasetMapper``, as the Global and ALA-Net
R18 demo yamls read them (128-px long side, x0.9-1.1 random scale, mirroring, each film
stretched between its 0.5 and 99.5 grey-level percentiles), and ``BoneAgeEvaluator``."""

import detectron2.data.transforms as T
from detectron2.config import LazyCall as L
from detectron2.data import (
    build_detection_test_loader,
    build_detection_train_loader,
    get_detection_dataset_dicts,
)
from omegaconf import OmegaConf

from boneage_d2.data import BoneAgeDatasetMapper, LongSideResize
from boneage_d2.engine.trainer import mean_boneage_months
from boneage_d2.evaluation import BoneAgeEvaluator
from boneage_d2.io.intensity import IntensityPipeline

dataloader = OmegaConf.create()

dataloader.train = L(build_detection_train_loader)(
    dataset=L(get_detection_dataset_dicts)(names="phantom_boneage_train", filter_empty=False),
    mapper=L(BoneAgeDatasetMapper)(
        is_train=True,
        augmentations=[
            L(LongSideResize)(long_side=128, scale_range=(0.9, 1.1)),
            L(T.RandomFlip)(horizontal=True, vertical=False),
        ],
        use_masks=False,  # hand masks: only HandSeg-RAN reads them
        intensity=L(IntensityPipeline)(name="percentiles"),
    ),
    total_batch_size=16,
    num_workers=2,
)

dataloader.test = L(build_detection_test_loader)(
    dataset=L(get_detection_dataset_dicts)(names="phantom_boneage_val", filter_empty=False),
    mapper=L(BoneAgeDatasetMapper)(
        is_train=False,
        augmentations=[L(LongSideResize)(long_side=128)],
        use_masks=False,
        intensity=L(IntensityPipeline)(name="percentiles"),  # the same as in training
    ),
    num_workers=2,
)

dataloader.evaluator = L(BoneAgeEvaluator)(
    dataset_name="${..test.dataset.names}",
    train_mean_months=L(mean_boneage_months)(names="${...train.dataset.names}"),
    bootstrap_samples=1000,
)
