"""Benchmark library: inference, backbone, training, data-loader and conversion costs, with ratios.

Every function takes its config paths and ``Settings``; nothing here assumes a checkout (the
command line ``tools/benchmark.py`` knows where the configs are). PyTorch and Detectron2 are
imported inside the functions, so importing this package stays cheap.
"""

from .backbones import LITE_BACKBONES, RESNET_DEPTHS, bench_backbones, build_lite, build_resnet
from .convert import NUM_KEYPOINTS, bench_convert, build_convert_input, convert_case
from .inference import (
    REFERENCES,
    InferenceCase,
    bench_inference,
    compare_handseg,
    dataset_inputs,
    handseg_pair,
    plain_mask_rcnn,
    synthetic_inputs,
)
from .report import SECTIONS, any_failed, finite, format_table, table_rows, write_results
from .settings import (
    QUICK_INFERENCE_OPTS,
    QUICK_TRAINING_OPTS,
    RSNA_TRAIN_ROWS,
    Settings,
    load_cfg,
    make_settings,
)
from .timing import (
    MIN_REPEATS,
    attempt,
    autocast,
    device_sync,
    fmt_s,
    load_average,
    log,
    machine_info,
    precisions,
    time_interleaved,
)
from .training import (
    LOADER_TARGET,
    bench_training_and_loader,
    make_training_data,
    register_training_json,
)

__all__ = [
    "LITE_BACKBONES",
    "LOADER_TARGET",
    "MIN_REPEATS",
    "NUM_KEYPOINTS",
    "QUICK_INFERENCE_OPTS",
    "QUICK_TRAINING_OPTS",
    "REFERENCES",
    "RESNET_DEPTHS",
    "RSNA_TRAIN_ROWS",
    "SECTIONS",
    "InferenceCase",
    "Settings",
    "any_failed",
    "attempt",
    "autocast",
    "bench_backbones",
    "bench_convert",
    "bench_inference",
    "bench_training_and_loader",
    "build_convert_input",
    "build_lite",
    "build_resnet",
    "compare_handseg",
    "convert_case",
    "dataset_inputs",
    "device_sync",
    "finite",
    "fmt_s",
    "format_table",
    "handseg_pair",
    "load_average",
    "load_cfg",
    "log",
    "machine_info",
    "make_settings",
    "make_training_data",
    "plain_mask_rcnn",
    "precisions",
    "register_training_json",
    "synthetic_inputs",
    "table_rows",
    "time_interleaved",
    "write_results",
]
