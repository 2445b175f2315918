"""LazyConfig optimizer: Adam at 1e-3 (ALA-Net's, and every R18 demo's), weight decay 1e-4 except
on normalisation layers, as ``build_boneage_optimizer`` sets it up for the yaml configs (which
also clip gradients, ``SOLVER.CLIP_GRADIENTS``: LazyConfig optimizers have no such option)."""

import torch
from detectron2.config import LazyCall as L
from detectron2.solver.build import get_default_optimizer_params

Adam = L(torch.optim.Adam)(
    # params.model is set to the model by the training entry before instantiating
    params=L(get_default_optimizer_params)(
        base_lr="${..lr}", weight_decay=1e-4, weight_decay_norm=0.0
    ),
    lr=1e-3,
)
