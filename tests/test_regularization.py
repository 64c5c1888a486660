import math

import pytest
import torch
import torch.nn.functional as F

from attention_course import attention_entropy, entropy_penalty, masked_softmax


def test_uniform_rows_have_entropy_ln_n():
    for n in (2, 5, 64):
        torch.testing.assert_close(
            attention_entropy(torch.full((3, n), 1 / n)), torch.full((3,), math.log(n))
        )


def test_one_hot_and_all_zero_rows_have_exactly_zero_entropy():
    one_hot = F.one_hot(torch.tensor([0, 3, 1]), 4).float()
    assert torch.equal(attention_entropy(one_hot), torch.zeros(3))
    fully_masked = masked_softmax(torch.randn(1, 2, 4), torch.tensor([0]))
    assert torch.equal(attention_entropy(fully_masked), torch.zeros(1, 2))


def test_matches_torch_distributions_categorical():
    w = torch.softmax(torch.randn(2, 3, 7), dim=-1)
    expected = torch.distributions.Categorical(probs=w).entropy()
    torch.testing.assert_close(attention_entropy(w), expected)


def test_dim_argument():
    w = torch.softmax(torch.randn(2, 5, 3), dim=1)
    torch.testing.assert_close(attention_entropy(w, dim=1), attention_entropy(w.transpose(1, 2)))


def test_gradients_finite_at_zero_weights_and_match_analytic_elsewhere():
    w = torch.tensor([[1.0, 0.0, 0.0], [0.2, 0.3, 0.5]], requires_grad=True)
    attention_entropy(w).sum().backward()
    assert torch.isfinite(w.grad).all()
    # dH/dp = -(ln p + 1) where p > 0
    torch.testing.assert_close(w.grad[1], -(torch.log(w[1].detach()) + 1))
    torch.testing.assert_close(w.grad[0, 0], torch.tensor(-1.0))


def test_gradient_through_softmax_is_finite_for_saturated_rows():
    logits = torch.tensor([[200.0, 0.0, -200.0]], requires_grad=True)
    attention_entropy(torch.softmax(logits, -1)).sum().backward()
    assert torch.isfinite(logits.grad).all()


def test_entropy_penalty_is_mean_squared_distance_to_alpha():
    w = torch.softmax(torch.randn(2, 3, 6), dim=-1)
    H = torch.distributions.Categorical(probs=w).entropy()
    torch.testing.assert_close(entropy_penalty(w, 0.2), ((H - 0.2) ** 2).mean())
    assert entropy_penalty(torch.full((4, 6), 1 / 6), math.log(6)).item() == pytest.approx(
        0, abs=1e-12
    )


def test_entropy_penalty_pushes_towards_target():
    logits = torch.randn(4, 6, requires_grad=True)
    opt = torch.optim.Adam([logits], lr=0.1)
    for _ in range(300):
        opt.zero_grad()
        entropy_penalty(torch.softmax(logits, -1), 0.2).backward()
        opt.step()
    H = attention_entropy(torch.softmax(logits, -1))
    torch.testing.assert_close(H, torch.full((4,), 0.2), atol=1e-2, rtol=0)


@pytest.mark.parametrize("alpha", [-0.1, math.log(6) + 0.01, float("nan")])
def test_alpha_outside_range_raises(alpha):
    with pytest.raises(
        ValueError, match=r"alpha: expected a target entropy in \[0, ln K\] = \[0, 1.7918\]"
    ):
        entropy_penalty(torch.full((2, 6), 1 / 6), alpha)


def test_bad_input():
    with pytest.raises(TypeError, match="alpha: expected a number, got str"):
        entropy_penalty(torch.full((2, 6), 1 / 6), "0.2")
    with pytest.raises(ValueError, match="weights: expected non-negative attention weights"):
        attention_entropy(torch.tensor([[1.2, -0.2]]))
    with pytest.raises(TypeError, match="weights: expected a floating-point tensor"):
        attention_entropy(torch.tensor([[1, 0]]))


def test_input_not_modified():
    w = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    before = w.clone()
    attention_entropy(w)
    entropy_penalty(w, 0.1)
    assert torch.equal(w, before)


def test_alpha_at_ln_k_computed_in_float32_is_accepted():
    alpha = torch.log(torch.tensor(6.0)).item()  # 1.7917594909667969 > math.log(6)
    assert alpha > math.log(6)
    assert entropy_penalty(torch.full((2, 6), 1 / 6), alpha).item() < 1e-12
