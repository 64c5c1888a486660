"""The KV-cache view: each step's row against a full causal pass, the cache against
``kv_cache_bytes``, the slider moved, and the static twin's contract."""

import math

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from attention_course.decoder import (
    VOCAB_SIZE,
    DecoderConfig,
    TinyDecoder,
    generate,
    kv_cache_bytes,
)
from attention_course.views.kv_cache import (
    build_kv_cache_view,
    cache_curves,
    decoding_trace,
    kv_cache_state,
    static_twin_frames,
)

P, N = 5, 7


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return TinyDecoder(DecoderConfig(VOCAB_SIZE, 16, num_kv_heads=2)).eval()


@pytest.fixture(scope="module")
def trace(model):
    prompt = torch.randint(0, 10, (P,), generator=torch.Generator().manual_seed(1))
    return decoding_trace(model, prompt, N)


def test_each_row_is_the_last_row_of_a_full_causal_pass(model, trace):
    assert trace.num_steps == N and trace.prompt_len == P
    expected_tokens = generate(model, torch.as_tensor(trace.tokens[:P])[None], N)[0]
    np.testing.assert_array_equal(trace.tokens, expected_tokens.numpy())
    for step in range(1, N + 1):
        known = P + step - 1  # tokens fed so far; the newest is at position known - 1
        with torch.no_grad():
            _, weights = model(torch.as_tensor(trace.tokens[:known])[None], need_weights=True)
        expected = torch.stack([w[0, :, -1] for w in weights]).double().numpy()  # (L, H, K)
        assert trace.rows[step - 1].shape == (2, 4, known)
        np.testing.assert_allclose(trace.rows[step - 1], expected, atol=1e-6)
        np.testing.assert_allclose(trace.rows[step - 1].sum(-1), 1.0, atol=1e-6)
        assert trace.cache_nbytes[step - 1] == kv_cache_bytes(model.config, known)


def test_state_blanks_the_keys_not_cached_yet(trace):
    state = kv_cache_state(trace, 3)
    K = P + 2
    assert state["cache_len"] == K and state["query_position"] == K - 1
    weights = state["weights"]
    assert weights.shape == (8, P + N - 1)
    assert np.isnan(weights[:, K:]).all() and not np.isnan(weights[:, :K]).any()
    np.testing.assert_allclose(weights[:, :K], trace.rows[2].reshape(8, K))
    assert state["predicted"] == trace.tokens[P + 2]
    for bad in (0, N + 1, 2.0, True):
        with pytest.raises(ValueError, match="step"):
            kv_cache_state(trace, bad)


def test_cache_curves_scale_with_the_key_value_heads(trace):
    curves = cache_curves(trace)
    assert list(curves) == [4, 2, 1]
    np.testing.assert_array_equal(curves[2], trace.cache_nbytes)
    np.testing.assert_array_equal(curves[4], 2 * curves[2])
    np.testing.assert_array_equal(curves[1], curves[2] // 2)
    assert curves[2][0] == kv_cache_bytes(trace.config, P)


def test_moving_the_step_redraws_both_panels(trace):
    view = build_kv_cache_view(trace, step=2)
    ax_row, ax_mem = view.figure.axes[:2]  # then the colour bar
    image = ax_row.images[0]
    marker = ax_mem.lines[-1]
    assert view.state["step"] == 2
    for step in (5, 1, N):
        before = np.ma.filled(np.asarray(image.get_array(), dtype=float), np.nan).copy()
        view.controls["step"].value = step
        drawn = np.ma.filled(np.asarray(image.get_array(), dtype=float), np.nan)
        expected = kv_cache_state(trace, step)["weights"]
        np.testing.assert_array_equal(np.isnan(drawn), np.isnan(expected))
        np.testing.assert_allclose(drawn[~np.isnan(drawn)], expected[~np.isnan(expected)])
        assert not np.array_equal(np.isnan(drawn), np.isnan(before))
        assert view.state["step"] == step
        np.testing.assert_allclose(marker.get_xdata(), [step])
        np.testing.assert_allclose(marker.get_ydata(), [trace.cache_nbytes[step - 1] / 1024])
        assert f"step {step}:" in ax_row.get_title()
        assert f"{trace.cache_nbytes[step - 1]:,} bytes" in ax_mem.get_title()


def test_static_twin_frames_cover_every_step():
    label, values, frame = static_twin_frames()
    assert label == "generation step"
    assert len(values) >= 12 and values == sorted(values)
    assert values[0] == 1 and math.isclose(values[-1], 12)
    first, last = frame(values[0]), frame(values[-1])
    assert isinstance(first, Figure) and isinstance(last, Figure)
    assert "step 1:" in first.axes[0].get_title() and "step 12:" in last.axes[0].get_title()


def test_bad_inputs_name_the_argument(model):
    with pytest.raises(ValueError, match="prompt"):
        decoding_trace(model, torch.zeros(1, 3, dtype=torch.long), 2)
    with pytest.raises(ValueError, match="num_new"):
        decoding_trace(model, torch.zeros(3, dtype=torch.long), 0)
