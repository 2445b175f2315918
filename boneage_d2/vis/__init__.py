"""Pictures: prediction and ground-truth overlays, attention maps, report plots."""

from .attention import draw_attention_maps
from .contact_sheet import contact_sheet
from .overlays import age_caption, draw_ground_truth, draw_prediction
from .report import (
    plot_mae_by_band_and_sex,
    plot_pred_vs_true,
    read_predictions,
    results_table,
    subgroup_table,
)

__all__ = [
    "age_caption",
    "contact_sheet",
    "draw_attention_maps",
    "draw_ground_truth",
    "draw_prediction",
    "plot_mae_by_band_and_sex",
    "plot_pred_vs_true",
    "read_predictions",
    "results_table",
    "subgroup_table",
]
