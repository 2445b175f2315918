"""Ordinal regression math: rank encoding, Eq. 1, decoding by summed probabilities."""

import math

import pytest
import torch

from boneage_d2.modeling.age_head import OrdinalAgeHead
from boneage_d2.modeling.ordinal import (
    age_to_rank,
    ordinal_loss,
    ordinal_probabilities,
    probabilities_to_months,
    rank_to_levels,
)


def test_rank_encoding_rounds_and_clips():
    ages = torch.tensor([0.0, 0.4, 0.6, 12.5, 250.0, -3.0])
    assert age_to_rank(ages, 1.0, 241).tolist() == [0, 0, 1, 12, 240, 0]
    assert age_to_rank(torch.tensor([13.0, 17.0]), 6.0, 41).tolist() == [2, 3]


def test_levels_are_rank_greater_than_k():
    levels = rank_to_levels(torch.tensor([0, 2, 4]), num_ranks=5)
    assert levels.tolist() == [[0, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1]]


def test_loss_equals_paper_eq1():
    torch.manual_seed(0)
    k = 7
    logits = torch.randn(3, k - 1)
    rank = torch.tensor([0, 3, 6])
    expected = 0.0
    for i in range(3):
        per_task = 0.0
        for j in range(k - 1):
            p = 1 / (1 + math.exp(-logits[i, j].item()))
            y = 1.0 if rank[i] > j else 0.0
            per_task += -(y * math.log(p) + (1 - y) * math.log(1 - p))
        expected += per_task / (k - 1)
    expected /= 3
    assert ordinal_loss(logits, rank).item() == pytest.approx(expected, rel=1e-5)


def test_prediction_is_sum_of_probabilities_in_months():
    logits = torch.tensor([[10.0, 10.0, -10.0, -10.0], [0.0, 0.0, 0.0, 0.0]])
    probas = ordinal_probabilities(logits)
    months = probabilities_to_months(probas, rank_width_months=6.0)
    assert months[0].item() == pytest.approx(12.0, abs=1e-3)  # two tasks "yes" -> rank 2
    assert months[1].item() == pytest.approx(12.0)  # 4 * 0.5 ranks * 6 months


@pytest.mark.parametrize("width", [1.0, 6.0])
def test_perfect_levels_decode_without_half_rank_bias(width):
    ages = torch.linspace(0, 228, 500)
    k = int(240 / width) + 1
    levels = rank_to_levels(age_to_rank(ages, width, k), k)
    decoded = probabilities_to_months(levels, width)
    assert (decoded - ages).mean().abs().item() < 0.05 * width
    assert (decoded - ages).abs().max().item() <= width / 2 + 1e-4


@pytest.mark.parametrize("formulation", ["independent", "coral", "corn"])
def test_head_initialised_at_prior_mean_and_learns(formulation):
    torch.manual_seed(0)
    head = OrdinalAgeHead(
        in_dim=4,
        hidden_dims=[],
        num_ranks=241,
        rank_width_months=1.0,
        formulation=formulation,
        mean_months=127.0,
        std_months=42.0,
    )
    x = torch.randn(64, 4)
    with torch.no_grad():
        first = head.predict_months(head(torch.zeros(2, 4)))
    assert first.tolist() == pytest.approx([127.0, 127.0], abs=1.0)
    target = 127 + 40 * x[:, 0]
    opt = torch.optim.Adam(head.parameters(), lr=0.05)
    for _ in range(200):
        opt.zero_grad()
        head.losses(head(x), target).backward()
        opt.step()
    mae = (head.predict_months(head(x)) - target).abs().mean().item()
    assert mae < 8.0


def test_unknown_formulation_is_a_clear_error():
    with pytest.raises(ValueError, match="FORMULATION"):
        OrdinalAgeHead(
            in_dim=4, hidden_dims=[], num_ranks=10, rank_width_months=1.0, formulation="softmax"
        )


def test_coral_loss_is_normalised_to_eq1():
    torch.manual_seed(0)
    logits, rank = torch.randn(5, 9), torch.tensor([0, 2, 4, 9, 7])
    assert ordinal_loss(logits, rank, "coral").item() == pytest.approx(
        ordinal_loss(logits, rank, "independent").item(), rel=1e-5
    )


def test_corn_loss_equals_coral_pytorch_reference():
    from coral_pytorch.losses import corn_loss

    torch.manual_seed(0)
    logits, rank = torch.randn(6, 12), torch.tensor([0, 1, 5, 12, 12, 3])
    assert ordinal_loss(logits, rank, "corn").item() == pytest.approx(
        corn_loss(logits, rank, 13).item(), rel=1e-5
    )


def test_corn_probabilities_are_cumulative_and_monotone():
    torch.manual_seed(0)
    probas = ordinal_probabilities(torch.randn(4, 20), "corn")
    assert (probas[:, 1:] <= probas[:, :-1] + 1e-7).all()
    cond = torch.sigmoid(torch.tensor([[2.0, 0.0, -1.0]]))
    expected = torch.cumprod(cond, dim=1)
    assert torch.allclose(ordinal_probabilities(torch.tensor([[2.0, 0.0, -1.0]]), "corn"), expected)


@pytest.mark.parametrize("formulation", ["independent", "coral", "corn"])
def test_prior_bias_decodes_to_the_prior_mean(formulation):
    from boneage_d2.modeling.ordinal import prior_level_logits

    logits = prior_level_logits(241, 1.0, 127.0, 42.0, formulation).unsqueeze(0)
    months = probabilities_to_months(ordinal_probabilities(logits, formulation), 1.0)
    assert months.item() == pytest.approx(127.0, abs=1.0)
