"""The gender feature (PRSNet / ALA-Net): the sex bit through a small fully-connected layer."""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["GenderEmbedding"]


class GenderEmbedding(nn.Module):
    """Maps the male bit [N] to an embedding [N, embed_dim] with FC + ReLU (PRSNet's 32 units)."""

    def __init__(self, embed_dim: int = 32):
        super().__init__()
        self.embed_dim = embed_dim
        self.fc = nn.Linear(1, embed_dim)

    def forward(self, male: Tensor) -> Tensor:
        """``male``: [N] in {0, 1}; centred to {-1, +1} so neither sex is the zero input."""
        return torch.relu(self.fc((2.0 * male - 1.0).unsqueeze(1)))
