"""``boneage-train``: training and evaluation, in Detectron2's ``tools/train_net.py`` style.

    boneage-train --config-file Global/R18-phantom-demo.yaml       # a packaged config, by name
    boneage-train --config-file my.yaml --eval-only MODEL.WEIGHTS out/model_final.pth
    boneage-train --config-file ... --resume
    boneage-train --config-file ... --num-gpus 2                    # DDP (GLOO on CPU)
    boneage-train --config-file ... --num-machines 2 --machine-rank 0 --num-gpus 8 \\
        --dist-url tcp://<machine 0 address>:<port>                 # then --machine-rank 1

``python tools/train_net.py`` runs the same. See docs/training.md ("Scaling out and
reliability") for resume, divergence and determinism.
"""

from __future__ import annotations

import argparse
import sys

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.engine import default_argument_parser, default_setup, launch
from detectron2.utils import comm
from detectron2.utils.logger import setup_logger

from ..engine import BoneAgeTrainer, ConfigError, load_config, validate_config
from ..engine.model_package import write_model_package
from ..engine.trainer import configure_determinism
from ..model_zoo import resolve_config_file

__all__ = ["BoneAgeTrainer", "build_parser", "cli", "main", "setup"]


def _config_path(args: argparse.Namespace) -> str:
    return resolve_config_file(args.config_file) if args.config_file else ""


def setup(args: argparse.Namespace):
    """Config from ``args`` (file + opts), validated, frozen, with Detectron2's default setup
    (logging, ``SEED + rank``, ``CUDNN_BENCHMARK``) and ``BONEAGE.TRAIN.DETERMINISTIC``."""
    cfg = load_config(args.config_file, args.opts)
    validate_config(cfg, training=not args.eval_only)
    cfg.freeze()
    # Detectron2 logs the config file's text: give it the file a packaged name stands for.
    default_setup(cfg, argparse.Namespace(**{**vars(args), "config_file": _config_path(args)}))
    # Detectron2 sets up its own loggers only: ours (plateau decisions, skipped images, resume)
    # would otherwise show warnings alone and never reach OUTPUT_DIR/log.txt.
    setup_logger(
        cfg.OUTPUT_DIR, distributed_rank=comm.get_rank(), name="boneage_d2", enable_propagation=True
    )
    configure_determinism(cfg)
    return cfg


def main(args: argparse.Namespace):
    """Train (or evaluate, ``--eval-only``) on this process; returns the last evaluation's
    results. After training, the main process writes ``OUTPUT_DIR/model_package``
    (``boneage_d2.engine.model_package``)."""
    cfg = setup(args)
    if args.eval_only:
        model = BoneAgeTrainer.build_model(cfg)
        DetectionCheckpointer(model, save_dir=cfg.OUTPUT_DIR).resume_or_load(
            cfg.MODEL.WEIGHTS, resume=args.resume
        )
        return BoneAgeTrainer.test(cfg, model)
    trainer = BoneAgeTrainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    results = trainer.train()
    if comm.is_main_process():
        write_model_package(
            cfg,
            config_name=args.config_file,
            results=results,
            provenance=trainer.provenance.info,
        )
    return results


EPILOG = """
--config-file takes a path or a packaged config name (boneage_d2.model_zoo.list_configs()):
  boneage-train --config-file Global/R18-phantom-demo.yaml OUTPUT_DIR out/global
  boneage-train --config-file my.yaml --eval-only MODEL.WEIGHTS out/global/model_final.pth
"""


def build_parser() -> argparse.ArgumentParser:
    """Detectron2's training arguments (``--config-file``, ``--resume``, ``--eval-only``,
    ``--num-gpus`` ...), with this package's examples."""
    parser = default_argument_parser(epilog=EPILOG)
    parser.prog = "boneage-train"
    return parser


def cli(argv: list[str] | None = None) -> None:
    """Console-script entry point: parse ``argv``, launch ``main`` on every process; a bad
    config exits 2 with a one-line error."""
    args = build_parser().parse_args(argv)
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
