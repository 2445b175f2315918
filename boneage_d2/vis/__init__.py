"""Pictures: prediction and ground-truth overlays, attention maps, report plots."""

from .attention import draw_attention_maps
from .overlays import age_caption, draw_ground_truth, draw_prediction
from .report import plot_mae_by_band_and_sex, plot_pred_vs_true, read_predictions, results_table

__all__ = [
    "age_caption",
    "draw_attention_maps",
    "draw_ground_truth",
    "draw_prediction",
    "plot_mae_by_band_and_sex",
    "plot_pred_vs_true",
    "read_predictions",
    "results_table",
]
