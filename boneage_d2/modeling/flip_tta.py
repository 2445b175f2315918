"""Flip test-time augmentation for every bone-age model (``BONEAGE.TEST.FLIP_TTA``)."""

from __future__ import annotations

from torch import nn

__all__ = ["BoneAgeFlipTTA"]


class BoneAgeFlipTTA(nn.Module):
    """Wraps a bone-age model for inference: each image-level ``boneage`` (months) becomes the mean
    of the film's and its mirror image's. Every other output (hand or ROI ``instances``, per-hand
    and per-ROI ages, flags, attention maps, rank intervals) stays the film's own.

    Both views go through the model in one batch (twice the batch, about twice the time). A left
    hand mirrored reads as a right one: the models see both in training when ``HFLIP`` is on.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batched_inputs: list[dict]) -> list[dict]:
        if self.training:
            raise RuntimeError("BoneAgeFlipTTA is for inference; train the model it wraps")
        mirrored = [{**x, "image": x["image"].flip(-1)} for x in batched_inputs]
        outputs = self.model(list(batched_inputs) + mirrored)
        n = len(batched_inputs)
        for out, mirror in zip(outputs[:n], outputs[n:]):
            out["boneage"] = (out["boneage"] + mirror["boneage"]) / 2
        return outputs[:n]
