"""``add_boneage_config``: every key this package adds, under ``cfg.BONEAGE``."""

from __future__ import annotations

from detectron2.config import CfgNode as CN

__all__ = ["add_boneage_config"]


def add_boneage_config(cfg: CN) -> CN:
    """Add the bone-age keys to a Detectron2 config (in place; also returned).

    Every key lives under ``cfg.BONEAGE`` so it never collides with Detectron2's own. Calling it
    twice is harmless. Defaults follow the ALA-Net paper unless a comment says otherwise.
    """
    if "BONEAGE" in cfg:
        return cfg
    cfg.BONEAGE = CN()
    # Age range the models predict (months). RSNA labels lie in 1..228.
    cfg.BONEAGE.MAX_AGE_MONTHS = 240.0
    # Target normalisation for the regression heads: predict (age - MEAN) / STD.
    cfg.BONEAGE.AGE_MEAN_MONTHS = 127.0
    cfg.BONEAGE.AGE_STD_MONTHS = 42.0

    # Global branch of GlobalBoneAgeRegressor / ALA-Net: which backbone feature is pooled.
    cfg.BONEAGE.GLOBAL = CN()
    cfg.BONEAGE.GLOBAL.IN_FEATURE = "res5"

    # Gender feature (PRSNet / ALA-Net): male bit -> FC embedding of this size.
    cfg.BONEAGE.GENDER = CN()
    cfg.BONEAGE.GENDER.EMBED_DIM = 32

    # Age head (registered in AGE_HEAD_REGISTRY): fusion MLP + predictor.
    cfg.BONEAGE.HEAD = CN()
    cfg.BONEAGE.HEAD.NAME = "OrdinalAgeHead"  # or "RegressionAgeHead"
    cfg.BONEAGE.HEAD.HIDDEN_DIMS = [256]  # fusion MLP hidden layer sizes
    cfg.BONEAGE.HEAD.DROPOUT = 0.0
    cfg.BONEAGE.HEAD.LOSS_WEIGHT = 1.0
    # RegressionAgeHead loss: "l1" (default, paper A's text), "l2" (paper A's Eq. 3), "smooth_l1".
    cfg.BONEAGE.HEAD.REGRESSION_LOSS = "l1"

    # Ordinal regression (ALA-Net Eq. 1). Rank r = round(age / RANK_WIDTH_MONTHS), clipped to
    # [0, NUM_RANKS - 1]; NUM_RANKS - 1 binary tasks "rank > k"; prediction = width * sum(p).
    cfg.BONEAGE.ORDINAL = CN()
    cfg.BONEAGE.ORDINAL.NUM_RANKS = 241  # 0..240 months at 1-month ranks
    cfg.BONEAGE.ORDINAL.RANK_WIDTH_MONTHS = 1.0
    # "independent": the paper's K-1 free logits; "coral": shared weights + K-1 biases
    # (rank-consistent, Cao et al. 2020).
    cfg.BONEAGE.ORDINAL.FORMULATION = "independent"

    # Input pipeline (BoneAgeDatasetMapper). The papers resize the long side to 512.
    cfg.BONEAGE.INPUT = CN()
    cfg.BONEAGE.INPUT.LONG_SIDE_TRAIN = 512
    cfg.BONEAGE.INPUT.LONG_SIDE_TEST = 512
    # Random scale: the train long side is drawn from LONG_SIDE_TRAIN * [lo, hi] (ALA-Net).
    cfg.BONEAGE.INPUT.RANDOM_SCALE = (0.9, 1.1)
    cfg.BONEAGE.INPUT.HFLIP = True
    cfg.BONEAGE.INPUT.ROTATION_DEG = 0.0  # Model A's rotation augmentation (0 = off)
    cfg.BONEAGE.INPUT.CROP_FRACTION = 1.0  # Model A's random crop, relative side (1 = off)
    # Pad every image to one fixed square (the largest long side the mapper can produce), so a
    # prediction never depends on which other images share its batch (GroupNorm statistics and
    # pooling would otherwise see the batch's padding). False = Detectron2's pad-to-batch-max.
    cfg.BONEAGE.INPUT.PAD_TO_SQUARE = True

    # Anatomical ROI boxes derived from keypoints (ALA-Net): side in pixels at a reference long
    # side (64 px at 512 px), so the box scales with the image.
    cfg.BONEAGE.ROI = CN()
    cfg.BONEAGE.ROI.SIZE_PX = 64.0
    cfg.BONEAGE.ROI.REFERENCE_LONG_SIDE = 512

    # Optimiser: "SGD" (Detectron2's; SOLVER.NESTEROV for paper A), "Adam" (ALA-Net), "AdamW".
    cfg.BONEAGE.SOLVER = CN()
    cfg.BONEAGE.SOLVER.OPTIMIZER = "SGD"

    # Evaluation.
    cfg.BONEAGE.EVAL = CN()
    cfg.BONEAGE.EVAL.AGE_BANDS_MONTHS = [0, 24, 60, 120, 180, 240]
    cfg.BONEAGE.EVAL.BOOTSTRAP_SAMPLES = 1000  # MAE 95% interval; 0 = off
    # COCO detection evaluation on a task view of each test set: "" (none), "hand" or "roi".
    cfg.BONEAGE.EVAL.DETECTION_VIEW = ""
    return cfg
