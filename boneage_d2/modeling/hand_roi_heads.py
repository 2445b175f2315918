"""``HandROIHeads``: Detectron2's ``StandardROIHeads`` for hands, with the mask head's
probabilities at given boxes (Model A's "predicted" training masks)."""

from __future__ import annotations

import torch
from detectron2.modeling import ROI_HEADS_REGISTRY
from detectron2.modeling.roi_heads import StandardROIHeads
from detectron2.structures import Boxes
from torch import Tensor

__all__ = ["HandROIHeads"]


@ROI_HEADS_REGISTRY.register()
class HandROIHeads(StandardROIHeads):
    """Box and mask heads as ``StandardROIHeads``; :meth:`mask_probabilities` runs the mask head
    at boxes the caller chooses (e.g. the ground-truth hands), so the bone-age regressor can
    train on the masks it will see at test time."""

    def mask_probabilities(
        self, features: dict[str, Tensor], boxes: list[Boxes], classes: Tensor
    ) -> Tensor:
        """Mask probabilities [sum K_i, M, M] at ``boxes`` (one ``Boxes`` per image of
        ``features``, possibly empty) for ``classes`` [sum K_i] (clamped to the head's classes;
        one class-agnostic mask when the head predicts one)."""
        if not self.mask_on or self.mask_pooler is None:
            raise ValueError(
                "mask probabilities need a pooled mask head: MODEL.MASK_ON True and "
                "MODEL.ROI_MASK_HEAD.POOLER_TYPE set"
            )
        pooled = self.mask_pooler([features[f] for f in self.mask_in_features], boxes)
        logits = self.mask_head.layers(pooled)  # [K, C or 1, M, M]
        index = torch.arange(len(logits), device=logits.device)
        return torch.sigmoid(logits[index, classes.clamp(max=logits.shape[1] - 1)])
