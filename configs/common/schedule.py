"""LazyConfig learning-rate multiplier: linear warm-up over the first 50 of 1,500 iterations from
1/1000, then cosine decay to 0 (the R18 demo yamls' WarmupCosineLR)."""

from detectron2.config import LazyCall as L
from detectron2.solver import WarmupParamScheduler
from fvcore.common.param_scheduler import CosineParamScheduler

lr_multiplier = L(WarmupParamScheduler)(
    scheduler=L(CosineParamScheduler)(start_value=1.0, end_value=0.0),
    warmup_length=50 / 1500,
    warmup_method="linear",
    warmup_factor=0.001,
)
