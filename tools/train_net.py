"""Training and evaluation entry point, in Detectron2's ``tools/train_net.py`` style; the same as
the console script ``boneage-train`` (the code: ``boneage_d2/cli/train.py``).

python tools/train_net.py --config-file configs/Global/R18-phantom-demo.yaml
python tools/train_net.py --config-file Global/R18-phantom-demo.yaml      # a packaged config name
python tools/train_net.py --config-file ... --eval-only MODEL.WEIGHTS out/model_final.pth
python tools/train_net.py --config-file ... --resume
python tools/train_net.py --config-file ... --num-gpus 2      # DDP (GLOO on CPU)
python tools/train_net.py --config-file ... --num-machines 2 --machine-rank 0 --num-gpus 8 \
    --dist-url tcp://<machine 0 address>:<port>                # then --machine-rank 1 on the other

See docs/training.md ("Scaling out and reliability") for resume, divergence and determinism.
"""

from boneage_d2.cli.train import BoneAgeTrainer, build_parser, cli, main, setup

__all__ = ["BoneAgeTrainer", "build_parser", "cli", "main", "setup"]

if __name__ == "__main__":
    cli()
