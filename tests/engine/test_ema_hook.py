"""WeightsEMA: the average follows the weights with its warm-up decay, replaces them after the last
iteration (so model_final and the final evaluation are the average's), and resumes."""

from types import SimpleNamespace

import pytest
import torch

from boneage_d2.engine.hooks import WeightsEMA


def _trainer(max_iter: int) -> SimpleNamespace:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    return SimpleNamespace(model=model, iter=0, max_iter=max_iter)


def _run(hook: WeightsEMA, trainer, steps: range) -> list[torch.Tensor]:
    seen = []
    for it in steps:
        trainer.iter = it
        with torch.no_grad():
            trainer.model[0].weight.add_(1.0)  # a "training step"
        g = torch.Generator().manual_seed(it)
        trainer.model[1](torch.randn(4, 2, generator=g))  # BatchNorm statistics move too
        seen.append(trainer.model[0].weight.detach().clone())
        hook.after_step()
    return seen


def test_average_uses_the_warmup_decay_and_replaces_the_weights_at_the_end():
    trainer = _trainer(max_iter=5)
    hook = WeightsEMA(decay=0.9)
    hook.trainer = trainer
    start = trainer.model[0].weight.detach().clone()
    hook.before_train()
    seen = _run(hook, trainer, range(5))
    expected = start
    for n, w in enumerate(seen):
        d = min(0.9, (1 + n) / (10 + n))
        expected = d * expected + (1 - d) * w
    final = trainer.model[0].weight.detach()
    torch.testing.assert_close(final, expected)
    assert not torch.allclose(final, seen[-1])  # the model now holds the average
    assert trainer.model[1].num_batches_tracked.item() == 5  # counters copied, not averaged


def test_resumed_average_continues_where_it_stopped():
    whole, first = _trainer(4), _trainer(4)
    for t in (whole, first):
        t.hook = WeightsEMA(0.5)
        t.hook.trainer = t
        t.hook.before_train()
    _run(whole.hook, whole, range(4))
    _run(first.hook, first, range(2))
    resumed = WeightsEMA(0.5)
    resumed.trainer = first
    resumed.load_state_dict(first.hook.state_dict())
    resumed.before_train()  # a loaded average is kept, not restarted from the weights
    _run(resumed, first, range(2, 4))
    torch.testing.assert_close(first.model.state_dict(), whole.model.state_dict())


def test_decay_outside_zero_one_is_an_error():
    with pytest.raises(ValueError, match="EMA.DECAY"):
        WeightsEMA(1.0)
