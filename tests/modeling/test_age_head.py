"""The regression age head's output range: ages are clipped to the span bone age is read over."""

from __future__ import annotations

import pytest
import torch

from boneage_d2.modeling.age_head import RegressionAgeHead


def _head(**kwargs) -> RegressionAgeHead:
    head = RegressionAgeHead(in_dim=4, hidden_dims=[], **kwargs)
    with torch.no_grad():
        head.fc.weight.fill_(10.0)  # normalised outputs of +-40 std: far outside 0-240 months
    return head


def test_predicted_ages_are_clipped_to_the_configured_range():
    head = _head(age_range_months=(0.0, 240.0))
    x = torch.tensor([[1.0] * 4, [-1.0] * 4, [0.0] * 4])
    months = head.predict_months(head(x))
    assert months.tolist() == pytest.approx([240.0, 0.0, 127.0])


def test_empty_range_leaves_ages_unclipped_and_the_loss_is_never_clipped():
    head = _head(age_range_months=())
    out = head(torch.ones(1, 4))
    assert float(head.predict_months(out)) == pytest.approx(127.0 + 40.0 * 42.0)
    clipped = _head()
    loss = clipped.losses(clipped(torch.ones(1, 4)), torch.tensor([127.0]))
    assert float(loss) == pytest.approx(40.0)  # |40 - 0| in normalised units


@pytest.mark.parametrize("bad", [(240.0, 0.0), (0.0,), (1.0, 2.0, 3.0)])
def test_bad_range_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="AGE_RANGE_MONTHS"):
        RegressionAgeHead(in_dim=4, hidden_dims=[], age_range_months=bad)
