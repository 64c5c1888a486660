"""Tests of position encodings against d2l, an elementwise math oracle and analytic identities."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from d2l import torch as d2l

from attention_course.position import (
    PositionalEncoding,
    apply_rotary,
    position_frequencies,
    shift_matrix,
    sinusoidal_encoding,
)


def reference_table(num_steps: int, num_hiddens: int) -> torch.Tensor:
    """The formula written out entry by entry with the math module (float64)."""
    rows = []
    for t in range(num_steps):
        row = []
        for j in range(num_hiddens):
            angle = t / 10000 ** ((j - j % 2) / num_hiddens)  # column 2i and 2i+1 share omega_i
            row.append(math.sin(angle) if j % 2 == 0 else math.cos(angle))
        rows.append(row)
    return torch.tensor(rows, dtype=torch.float64)


def reference_rotary(x: torch.Tensor, positions: torch.Tensor, base: float) -> torch.Tensor:
    """RoPE as complex multiplication (the form of Meta's LLaMA code): z_i * exp(i t theta_i)."""
    Dh = x.shape[-1]
    theta = base ** (-torch.arange(0, Dh, 2, dtype=torch.float64) / Dh)  # (Dh/2,)
    z = torch.view_as_complex(x.double().reshape(*x.shape[:-1], Dh // 2, 2).contiguous())
    turn = torch.polar(torch.ones_like(theta), positions.double()[..., None] * theta)
    return torch.view_as_real(z * turn).reshape(x.shape)  # (..., T, Dh) float64


@pytest.mark.parametrize(("num_steps", "num_hiddens"), [(1, 2), (60, 32), (1000, 6), (7, 512)])
def test_table_equals_d2l_positional_encoding(num_steps, num_hiddens):
    expected = d2l.PositionalEncoding(num_hiddens, 0).P[0, :num_steps]
    got = sinusoidal_encoding(num_steps, num_hiddens)
    assert got.shape == (num_steps, num_hiddens)
    assert got.dtype == torch.float32
    assert torch.equal(got, expected)


def test_float64_table_equals_the_formula_entry_by_entry():
    got = sinusoidal_encoding(40, 10, dtype=torch.float64)
    torch.testing.assert_close(got, reference_table(40, 10), rtol=0, atol=1e-12)
    # float32 agrees with the exact table to float32 accuracy over d2l's 1000 positions
    exact = sinusoidal_encoding(1000, 8, dtype=torch.float64)
    assert (sinusoidal_encoding(1000, 8).double() - exact).abs().max() < 1e-4
    assert sinusoidal_encoding(1000, 8, dtype=torch.float64).dtype == torch.float64


def test_table_arguments_are_checked():
    with pytest.raises(ValueError, match=r"num_hiddens: expected an even number.*got 7"):
        sinusoidal_encoding(10, 7)
    with pytest.raises(ValueError, match="num_steps: expected a positive int, got 0"):
        sinusoidal_encoding(0, 8)
    with pytest.raises(ValueError, match="num_steps: expected a positive int, got float"):
        sinusoidal_encoding(10.0, 8)
    with pytest.raises(ValueError, match="num_hiddens: expected an int, got bool"):
        sinusoidal_encoding(10, True)
    with pytest.raises(ValueError, match="num_hiddens: expected an int >= 2, got 0"):
        sinusoidal_encoding(10, 0)
    with pytest.raises(TypeError, match="dtype"):
        sinusoidal_encoding(10, 8, dtype=torch.int64)
    # numpy ints and 0-d integer tensors are ints
    expected = sinusoidal_encoding(5, 8)
    assert torch.equal(sinusoidal_encoding(np.int64(5), np.int32(8)), expected)
    assert torch.equal(sinusoidal_encoding(torch.tensor(5), torch.tensor(8)), expected)


def test_frequencies():
    omega = position_frequencies(8)
    torch.testing.assert_close(
        omega, torch.tensor([1.0, 10000**-0.25, 10000**-0.5, 10000**-0.75], dtype=torch.float64)
    )
    torch.testing.assert_close(position_frequencies(4, base=100.0)[1], torch.tensor(0.1).double())
    with pytest.raises(ValueError, match="base"):
        position_frequencies(8, base=-1.0)


@pytest.mark.parametrize("offset", [1, 3, 17, -5, 0])
def test_shift_is_a_fixed_block_rotation(offset):
    D = 12
    P = sinusoidal_encoding(80, D, dtype=torch.float64)  # (T, D)
    M = shift_matrix(offset, D)  # (D, D)
    lo, hi = max(0, -offset), 80 - max(0, offset)
    # P_{t+k} = M_k P_t for every t: rows, so P[t + k] = P[t] @ M^T
    torch.testing.assert_close(P[lo + offset : hi + offset], P[lo:hi] @ M.T, rtol=0, atol=1e-12)
    torch.testing.assert_close(M @ M.T, torch.eye(D, dtype=torch.float64))  # a rotation
    off_block = M.clone()
    for i in range(0, D, 2):
        off_block[i : i + 2, i : i + 2] = 0
    assert torch.equal(off_block, torch.zeros_like(M)), "pairs do not mix"


def test_shift_matrices_compose_and_accept_int_like():
    torch.testing.assert_close(shift_matrix(3, 8) @ shift_matrix(4, 8), shift_matrix(7, 8))
    torch.testing.assert_close(shift_matrix(-2, 8), shift_matrix(2, 8).T)
    assert torch.equal(shift_matrix(np.int64(3), 8), shift_matrix(3, 8))
    assert shift_matrix(1, 4, dtype=torch.float32).dtype == torch.float32
    with pytest.raises(ValueError, match="offset: expected an int, got float"):
        shift_matrix(1.5, 8)
    assert torch.equal(shift_matrix(torch.tensor(-2), 8), shift_matrix(-2, 8))
    with pytest.raises(ValueError, match="num_hiddens"):
        shift_matrix(1, 5)


def test_module_forward_equals_d2l_and_keeps_the_input():
    torch.manual_seed(0)
    X = torch.randn(3, 20, 16)
    original = X.clone()
    ours, theirs = PositionalEncoding(16).eval(), d2l.PositionalEncoding(16, 0.0).eval()
    torch.testing.assert_close(ours(X), theirs(X), rtol=0, atol=0)
    assert torch.equal(X, original), "the input must not be modified"
    assert ours.P.shape == (1, 1000, 16)
    assert "P" not in ours.state_dict()
    # float64 input stays float64, with d2l's numbers
    X64 = X.double()
    assert ours(X64).dtype == torch.float64
    torch.testing.assert_close(ours(X64), theirs(X64), rtol=0, atol=0)


def test_module_dropout_matches_d2l_in_training():
    X = torch.randn(2, 9, 8)
    ours, theirs = PositionalEncoding(8, dropout=0.5), d2l.PositionalEncoding(8, 0.5)
    torch.manual_seed(3)
    a = ours(X)
    torch.manual_seed(3)
    b = theirs(X)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert (a == 0).any() and not torch.equal(a, ours.eval()(X))


def test_module_errors_name_the_argument():
    layer = PositionalEncoding(8, max_len=10)
    layer(torch.zeros(1, 10, 8))  # exactly max_len is fine
    with pytest.raises(ValueError, match=r"max_len: .*max_len = 10.*T = 11"):
        layer(torch.zeros(1, 11, 8))
    with pytest.raises(ValueError, match="num_hiddens"):
        layer(torch.zeros(1, 5, 6))
    with pytest.raises(ValueError, match=r"X: expected shape \(B, T, num_hiddens\)"):
        layer(torch.zeros(5, 8))
    with pytest.raises(ValueError, match="num_hiddens: expected an even number"):
        PositionalEncoding(9)
    with pytest.raises(ValueError, match=r"dropout: expected a probability in \[0, 1\), got 1.0"):
        PositionalEncoding(8, dropout=1.0)
    with pytest.raises(ValueError, match="max_len: expected a positive int, got 0"):
        PositionalEncoding(8, max_len=0)
    assert PositionalEncoding(np.int64(8), max_len=torch.tensor(4)).P.shape == (1, 4, 8)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rotary_equals_complex_multiplication(dtype):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 12, 8, generator=g, dtype=dtype)  # (B, H, T, Dh)
    original = x.clone()
    got = apply_rotary(x)
    assert got.dtype == dtype and got.shape == x.shape
    expected = reference_rotary(x, torch.arange(12), 10000.0).to(dtype)
    torch.testing.assert_close(got, expected)
    assert torch.equal(x, original), "the input must not be modified"
    positions = torch.tensor([5.0, 0.5, 100.0, 3.0])  # any real positions
    y = torch.randn(4, 6, generator=g, dtype=dtype)
    torch.testing.assert_close(
        apply_rotary(y, positions, base=50.0), reference_rotary(y, positions, 50.0).to(dtype)
    )


def test_rotary_keeps_norms_and_position_zero():
    x = torch.randn(5, 16, 32, dtype=torch.float64)
    y = apply_rotary(x)
    torch.testing.assert_close(y.norm(dim=-1), x.norm(dim=-1), rtol=1e-12, atol=0)
    assert torch.equal(y[:, 0], x[:, 0])
    assert not torch.allclose(y[:, 1:], x[:, 1:])
    # a row equals x @ M_t for the sinusoidal shift matrix of its position
    torch.testing.assert_close(y[2, 7], x[2, 7] @ shift_matrix(7, 32))


def test_rotary_scores_depend_only_on_the_offset():
    g = torch.Generator().manual_seed(1)
    T, Dh = 10, 8
    q = torch.randn(Dh, generator=g, dtype=torch.float64).expand(T, Dh)  # one query at every t
    k = torch.randn(Dh, generator=g, dtype=torch.float64).expand(T, Dh)  # one key at every t
    scores = apply_rotary(q) @ apply_rotary(k).T  # (T, T): entry (m, n) = <R_m q, R_n k>
    for offset in range(-(T - 1), T):
        diagonal = torch.diagonal(scores, offset=offset)  # all (m, m + offset)
        torch.testing.assert_close(diagonal, diagonal[:1].expand_as(diagonal), rtol=0, atol=1e-12)
        # <R_m q, R_n k> = <q, R_{n-m} k>
        shifted = apply_rotary(k[:1], torch.tensor([float(offset)]))[0]
        torch.testing.assert_close(diagonal[0], q[0] @ shifted, rtol=0, atol=1e-12)
    assert torch.diagonal(scores, 1).std() < 1e-12 and scores.std() > 0.1
    # shifting all positions together changes no score
    moved = apply_rotary(q, torch.arange(T) + 37) @ apply_rotary(k, torch.arange(T) + 37).T
    torch.testing.assert_close(moved, scores, rtol=0, atol=1e-12)


def test_rotary_broadcasts_positions():
    x = torch.randn(2, 3, 5, 4)  # (B, H, T, Dh)
    positions = torch.tensor([[0, 1, 2, 3, 4], [10, 11, 12, 13, 14]])  # (B, T)
    got = apply_rotary(x, positions[:, None, :])  # (B, 1, T) broadcasts over heads
    torch.testing.assert_close(got[0], apply_rotary(x[0]))
    torch.testing.assert_close(got[1], apply_rotary(x[1], torch.arange(10, 15)))
    with pytest.raises(ValueError, match=r"positions: expected a shape that broadcasts"):
        apply_rotary(x, positions)  # (B, T) would line B up with H
    with pytest.raises(ValueError, match="positions"):
        apply_rotary(x, torch.arange(6))
    # positions follow x to its device (here PyTorch's shape-only "meta" device)
    on_meta = apply_rotary(x.to("meta"), torch.arange(5))
    assert on_meta.device.type == "meta" and on_meta.shape == x.shape


def test_rotary_errors():
    with pytest.raises(ValueError, match=r"x: expected an even last dimension.*Dh = 5"):
        apply_rotary(torch.zeros(3, 5))
    with pytest.raises(TypeError, match="x: expected a floating-point"):
        apply_rotary(torch.zeros(3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"x: expected shape \(\.\.\., T, Dh\)"):
        apply_rotary(torch.zeros(4))
    with pytest.raises(TypeError, match="positions: expected real numbers"):
        apply_rotary(torch.zeros(3, 4), torch.ones(3, dtype=torch.bool))
    with pytest.raises(TypeError, match="positions: expected a torch.Tensor"):
        apply_rotary(torch.zeros(3, 4), [0, 1, 2])
    with pytest.raises(ValueError, match="base"):
        apply_rotary(torch.zeros(3, 4), base=0.0)
