"""Training and evaluation entry point, in Detectron2's ``tools/train_net.py`` style.

python tools/train_net.py --config-file configs/Global/R18-phantom-demo.yaml
python tools/train_net.py --config-file ... --eval-only MODEL.WEIGHTS out/model_final.pth
python tools/train_net.py --config-file ... --resume
python tools/train_net.py --config-file ... --num-gpus 2      # DDP (GLOO on CPU)
python tools/train_net.py --config-file ... --num-machines 2 --machine-rank 0 --num-gpus 8 \
    --dist-url tcp://<machine 0 address>:<port>                # then --machine-rank 1 on the other

See docs/training.md ("Scaling out and reliability") for resume, divergence and determinism.
"""

from __future__ import annotations

import sys

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.engine import default_argument_parser, default_setup, launch
from detectron2.utils import comm
from detectron2.utils.logger import setup_logger

import boneage_d2  # noqa: F401  (registers architectures and datasets)
from boneage_d2.engine import BoneAgeTrainer, ConfigError, load_config, validate_config
from boneage_d2.engine.trainer import configure_determinism

__all__ = ["setup", "main", "cli"]


def setup(args):
    """Config from ``args`` (file + opts), validated, frozen, with Detectron2's default setup
    (logging, ``SEED + rank``, ``CUDNN_BENCHMARK``) and ``BONEAGE.TRAIN.DETERMINISTIC``."""
    cfg = load_config(args.config_file, args.opts)
    validate_config(cfg, training=not args.eval_only)
    cfg.freeze()
    default_setup(cfg, args)
    # Detectron2 sets up its own loggers only: ours (plateau decisions, skipped images, resume)
    # would otherwise show warnings alone and never reach OUTPUT_DIR/log.txt.
    setup_logger(
        cfg.OUTPUT_DIR, distributed_rank=comm.get_rank(), name="boneage_d2", enable_propagation=True
    )
    configure_determinism(cfg)
    return cfg


def main(args):
    cfg = setup(args)
    if args.eval_only:
        model = BoneAgeTrainer.build_model(cfg)
        DetectionCheckpointer(model, save_dir=cfg.OUTPUT_DIR).resume_or_load(
            cfg.MODEL.WEIGHTS, resume=args.resume
        )
        return BoneAgeTrainer.test(cfg, model)
    trainer = BoneAgeTrainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    return trainer.train()


def cli(argv: list[str] | None = None) -> None:
    args = default_argument_parser().parse_args(argv)
    try:
        launch(
            main,
            args.num_gpus,
            num_machines=args.num_machines,
            machine_rank=args.machine_rank,
            dist_url=args.dist_url,
            args=(args,),
        )
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    cli()
