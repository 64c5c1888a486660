import pytest
import torch
import torch.nn.functional as F

from attention_course import masked_softmax, sequence_mask
from attention_course.masking import length_mask


def boolean_mask_softmax(X, keep):
    """Oracle: the textbook boolean-mask softmax (-inf fill), NaN rows set to 0."""
    return torch.softmax(X.masked_fill(~keep, float("-inf")), dim=-1).nan_to_num(0.0)


def test_no_mask_is_plain_softmax():
    X = torch.randn(2, 3, 5)
    torch.testing.assert_close(masked_softmax(X), F.softmax(X, dim=-1))


@pytest.mark.parametrize("valid_lens", [torch.tensor([2, 4]), torch.tensor([[1, 3, 5], [2, 2, 4]])])
def test_matches_d2l_where_conventions_agree(d2l, valid_lens):
    X = torch.randn(2, 3, 5)
    torch.testing.assert_close(
        masked_softmax(X, valid_lens), d2l.masked_softmax(X.clone(), valid_lens)
    )


def test_matches_boolean_mask_oracle_and_masked_entries_are_exactly_zero():
    X = torch.randn(2, 3, 5)
    valid_lens = torch.tensor([[1, 3, 5], [2, 2, 4]])
    keep = torch.arange(5) < valid_lens[..., None]
    out = masked_softmax(X, valid_lens)
    torch.testing.assert_close(out, boolean_mask_softmax(X, keep))
    assert (out[~keep] == 0).all()
    torch.testing.assert_close(out.sum(-1), torch.ones(2, 3))


def test_zero_valid_length_gives_zero_row_not_uniform_not_nan(d2l):
    X = torch.randn(2, 3, 4)
    out = masked_softmax(X, torch.tensor([0, 3]))
    assert torch.equal(out[0], torch.zeros(3, 4))
    torch.testing.assert_close(out[1].sum(-1), torch.ones(3))
    # d2l's -1e6 fill gives a uniform row here: the documented difference
    torch.testing.assert_close(
        d2l.masked_softmax(X.clone(), torch.tensor([0, 3]))[0], torch.full((3, 4), 0.25)
    )


def test_boolean_mask_and_combination_with_valid_lens():
    X = torch.randn(2, 4, 4)
    causal = torch.ones(4, 4, dtype=torch.bool).tril()  # (Q, K) broadcast over the batch
    out = masked_softmax(X, mask=causal)
    torch.testing.assert_close(out, boolean_mask_softmax(X, causal.expand(2, 4, 4)))
    both = masked_softmax(X, torch.tensor([2, 4]), mask=causal)
    keep = causal & (torch.arange(4) < torch.tensor([2, 4])[:, None, None])
    torch.testing.assert_close(both, boolean_mask_softmax(X, keep))


def test_mask_broadcast_over_heads():
    X = torch.randn(2, 3, 4, 5)  # (B, H, Q, K)
    keep = torch.tensor([[True] * 3 + [False] * 2, [True] * 5])[:, None, None, :]  # (B, 1, 1, K)
    out = masked_softmax(X, mask=keep)
    torch.testing.assert_close(out, boolean_mask_softmax(X, keep.expand_as(X)))
    torch.testing.assert_close(masked_softmax(X, torch.tensor([3, 5])), out)


def test_fully_masked_rows_have_finite_gradients():
    X = torch.randn(2, 3, 4, requires_grad=True)
    out = masked_softmax(X, torch.tensor([0, 2]))
    assert torch.equal(out[0], torch.zeros(3, 4)), "with autograd too: zeros, never NaN"
    (out * torch.randn_like(out)).sum().backward()
    assert torch.isfinite(X.grad).all()
    assert torch.equal(X.grad[0], torch.zeros(3, 4))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
def test_low_precision_large_scores_no_nan_no_overflow(dtype):
    X = (torch.randn(2, 3, 6) * 1e4).to(dtype)
    valid_lens = torch.tensor([0, 4])
    out = masked_softmax(X, valid_lens)
    assert out.dtype == dtype
    assert torch.isfinite(out).all()
    expected = boolean_mask_softmax(X.double(), torch.arange(6) < valid_lens[:, None, None])
    torch.testing.assert_close(out.double(), expected, atol=1e-2, rtol=0)


def test_input_is_not_modified():
    X = torch.randn(2, 3, 5)
    before = X.clone()
    masked_softmax(X, torch.tensor([1, 2]), mask=torch.ones(5, dtype=torch.bool))
    assert torch.equal(X, before)


def test_float_valid_lens_accepted_when_whole():
    X = torch.randn(2, 2, 4)
    torch.testing.assert_close(
        masked_softmax(X, torch.tensor([1.0, 3.0])), masked_softmax(X, torch.tensor([1, 3]))
    )


@pytest.mark.parametrize(
    ("valid_lens", "match"),
    [
        (torch.tensor([-1, 2]), r"valid_lens: expected lengths in \[0, 5\].*-1"),
        (torch.tensor([2, 6]), r"valid_lens: expected lengths in \[0, 5\].*6"),
        (torch.tensor([2, 3, 4]), r"valid_lens: expected shape \(2,\) or \(2, 3\).*\(3,\)"),
        (torch.tensor([[1, 2], [3, 4]]), r"valid_lens: expected shape.*\(2, 2\)"),
        (torch.tensor([1.5, 2.0]), r"valid_lens: expected whole numbers"),
    ],
)
def test_bad_valid_lens(valid_lens, match):
    with pytest.raises(ValueError, match=match):
        masked_softmax(torch.randn(2, 3, 5), valid_lens)


def test_bad_types():
    with pytest.raises(TypeError, match="X: expected a torch.Tensor, got list"):
        masked_softmax([[1.0, 2.0]])
    with pytest.raises(TypeError, match="X: expected a floating-point tensor"):
        masked_softmax(torch.ones(2, 3, dtype=torch.long))
    with pytest.raises(TypeError, match="mask: expected a bool tensor"):
        masked_softmax(torch.randn(2, 3), mask=torch.ones(2, 3))
    with pytest.raises(ValueError, match=r"mask: expected a shape broadcastable to X \(2, 3\)"):
        masked_softmax(torch.randn(2, 3), mask=torch.ones(4, dtype=torch.bool))
    with pytest.raises(
        TypeError, match="valid_lens: expected integer lengths, got dtype torch.bool"
    ):
        masked_softmax(torch.randn(2, 3), torch.tensor([True, False]))


def test_mask_larger_than_scores_is_rejected_not_broadcast():
    with pytest.raises(ValueError, match=r"mask: expected a shape broadcastable to X \(2, 1, 5\)"):
        masked_softmax(torch.randn(2, 1, 5), mask=torch.ones(2, 3, 5, dtype=torch.bool))


def test_sequence_mask_matches_d2l_and_returns_new_tensor(d2l):
    X = torch.randn(3, 4, 2)
    valid = torch.tensor([1, 4, 0])
    before = X.clone()
    out = sequence_mask(X, valid, value=-1.0)
    torch.testing.assert_close(out, d2l.sequence_mask(X.clone(), valid, value=-1.0))
    assert torch.equal(X, before)
    assert (out[2] == -1).all() and torch.equal(out[1], X[1])


def test_length_mask():
    assert length_mask(torch.tensor([0, 2]), 3).tolist() == [[False] * 3, [True, True, False]]


# --- defects found in review (issue 9): each failed before its fix ----------------------


def test_sequence_mask_rejects_2d_valid_len():
    with pytest.raises(ValueError, match="valid_len: expected one length per sequence"):
        sequence_mask(torch.ones(2, 3), torch.tensor([[1, 2], [2, 3]]))


def test_masked_softmax_1d_x_with_valid_lens_is_rejected_not_enlarged():
    with pytest.raises(ValueError, match="valid_lens"):
        masked_softmax(torch.randn(4), torch.tensor([2, 2, 2, 2]))


def test_plus_inf_kept_score_does_not_leak_nan_into_masked_entries():
    X = torch.tensor([[[float("inf"), 1.0, 2.0]]])
    w = masked_softmax(X, torch.tensor([2]))
    assert w[0, 0, 2] == 0, "a masked entry must be exactly 0 even when its row is NaN"


@pytest.mark.parametrize("requires_grad", [False, True])
def test_kept_scores_at_finfo_min_still_sum_to_one(requires_grad):
    low = torch.finfo(torch.float32).min
    X = torch.full((1, 2, 4), low, requires_grad=requires_grad)
    w = masked_softmax(X, torch.tensor([2]))
    torch.testing.assert_close(w.sum(-1), torch.ones(1, 2))
    assert torch.all(w[..., 2:] == 0)
