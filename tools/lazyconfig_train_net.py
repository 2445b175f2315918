"""Training and evaluation from a LazyConfig (a Python config), in Detectron2's
``tools/lazyconfig_train_net.py`` style; the same as the console script ``boneage-lazy-train``
(the code: ``boneage_d2/cli/lazy_train.py``).

    python tools/lazyconfig_train_net.py --config-file configs/Global/R18-phantom-demo.py
    python tools/lazyconfig_train_net.py --config-file ALA-Net/R18-phantom-demo.py \
        train.max_iter=250 train.output_dir=output/alanet_lazy
    python tools/lazyconfig_train_net.py --config-file ... --eval-only \
        train.init_checkpoint=output/alanet_lazy/model_final.pth
"""

from boneage_d2.cli.lazy_train import build_parser, cli, evaluate, load_lazy_config, main, train

__all__ = ["build_parser", "cli", "evaluate", "load_lazy_config", "main", "train"]

if __name__ == "__main__":
    cli()
