r"""The KV-cache view: a slider over the generation step of a trained tiny decoder.

At step s the newest token (the last prompt token at s = 1, then the token generated at
step s - 1) is the only query; it attends causally over every cached key, itself
included, and its key and value join the cache. Two panels:

1. the newest token's attention row in every layer and head (keys after it do not exist
   yet and are blank),
2. the cache's size against the step for every number of key/value heads that divides H
   (multi-head, grouped-query, multi-query), this model's marked, the current step ringed.

Nothing is computed on a move: :func:`decoding_trace` runs the generation once.

Shapes: P prompt tokens, N generated tokens, L layers, H heads, K cached keys.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.artist import Artist
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from torch import Tensor

from .._validation import require_int, require_ndim, require_tensor
from ..decoder import DecoderConfig, TinyDecoder, kv_cache_bytes
from ..plotting import OKABE_ITO
from .live import LiveFigure, View


@dataclass(frozen=True)
class DecodingTrace:
    """What one cached greedy generation did, step by step.

    Args:
        config: the model's sizes.
        tokens: the prompt then the N generated tokens, (P + N,).
        prompt_len: P.
        rows: ``rows[s - 1]`` is step s's newest-token attention, (L, H, P + s - 1).
        cache_nbytes: ``KVCache.nbytes`` summed over layers after each step, (N,).

    Taught in chapters/10_causal_decoding_and_kv_cache.ipynb.
    """

    config: DecoderConfig
    tokens: np.ndarray
    prompt_len: int
    rows: tuple[np.ndarray, ...]
    cache_nbytes: tuple[int, ...]

    @property
    def num_steps(self) -> int:
        """N, the generation steps."""
        return len(self.rows)


@torch.no_grad()
def decoding_trace(model: TinyDecoder, prompt: Tensor, num_new: int) -> DecodingTrace:
    """Generate ``num_new`` tokens greedily with a KV cache, keeping each step's row.

    Shapes:
        prompt (P,) -> a trace of N = ``num_new`` steps

    Taught in chapters/10_causal_decoding_and_kv_cache.ipynb.
    """
    require_tensor("prompt", prompt)
    require_ndim("prompt", prompt, (1,), "(P,)")
    N = require_int("num_new", num_new, low=1)
    caches = model.new_caches()
    feed = prompt[None]  # (1, P): the prefill
    tokens, rows, nbytes = prompt.tolist(), [], []
    for _ in range(N):
        logits, weights = model(feed, caches, need_weights=True)  # (1, T, V), L x (1, H, T, K)
        rows.append(torch.stack([w[0, :, -1] for w in weights]).double().numpy())  # (L, H, K)
        nbytes.append(sum(cache.nbytes for cache in caches))
        next_token = int(logits[0, -1].argmax())
        tokens.append(next_token)
        feed = torch.tensor([[next_token]])  # (1, 1): only the new token
    return DecodingTrace(
        model.config, np.array(tokens), prompt.shape[0], tuple(rows), tuple(nbytes)
    )


def kv_cache_state(trace: DecodingTrace, step: int) -> dict[str, object]:
    """Everything the view draws at one step.

    Returns:
        A dict with ``step``, ``query_position`` (the newest token's position),
        ``cache_len`` (keys attended, = cached after the step), ``weights``
        (L * H, P + N - 1) with NaN for keys not yet cached, ``cache_nbytes``,
        ``predicted`` (the token this step generates).

    Taught in chapters/10_causal_decoding_and_kv_cache.ipynb.
    """
    N = trace.num_steps
    if isinstance(step, bool) or not isinstance(step, int | np.integer) or not 1 <= step <= N:
        raise ValueError(f"step: expected an int in [1, {N}], got {step!r}")
    row = trace.rows[step - 1]  # (L, H, K)
    L, H, K = row.shape
    width = trace.prompt_len + N - 1
    weights = np.full((L * H, width), np.nan)
    weights[:, :K] = row.reshape(L * H, K)  # (L, H, K) -> (L*H, K)
    return {
        "step": int(step),
        "query_position": K - 1,
        "cache_len": K,
        "weights": weights,
        "cache_nbytes": trace.cache_nbytes[step - 1],
        "predicted": int(trace.tokens[trace.prompt_len + step - 1]),
    }


def cache_curves(trace: DecodingTrace) -> dict[int, np.ndarray]:
    """Cache bytes after each step for every Hkv dividing H (same D, L, float32).

    Shapes:
        -> {Hkv: (N,)}

    Taught in chapters/10_causal_decoding_and_kv_cache.ipynb.
    """
    config = trace.config
    lengths = [trace.prompt_len + s - 1 for s in range(1, trace.num_steps + 1)]
    curves = {}
    for kv in range(config.num_heads, 0, -1):
        if config.num_heads % kv == 0:
            variant = DecoderConfig(**{**config.__dict__, "num_kv_heads": kv})
            curves[kv] = np.array([kv_cache_bytes(variant, T) for T in lengths])
    return curves


def _token_label(token: int) -> str:
    return "|" if token == 10 else str(token)


def draw_kv_cache(
    figure: Figure, trace: DecodingTrace
) -> tuple[Callable[[int], dict[str, object]], list[Artist]]:
    """Lay out the two panels on ``figure``; return ``update(step)`` and what it changes.

    ``update(step)`` sets the artists' data for one step; the list holds the artists it
    changes (the live view redraws only those: :meth:`LiveFigure.animate`).

    Taught in chapters/10_causal_decoding_and_kv_cache.ipynb.
    """
    config = trace.config
    L, H, N = config.num_layers, config.num_heads, trace.num_steps
    ax_row, ax_mem = figure.subplots(1, 2, width_ratios=(2.3, 1))
    cmap = colormaps["Reds"].with_extremes(bad="#eeeeee")  # grey: keys not cached yet
    first = kv_cache_state(trace, 1)
    image = ax_row.imshow(first["weights"], cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto")
    figure.colorbar(image, ax=ax_row, label="attention weight", shrink=0.9)
    width = trace.prompt_len + N - 1
    labels = [_token_label(int(t)) for t in trace.tokens[:width]]
    ax_row.set_xticks(range(width), labels, fontsize=7)
    ax_row.set_yticks(range(L * H), [f"L{i // H + 1} H{i % H + 1}" for i in range(L * H)])
    ax_row.set(xlabel="cached key position (token shown)", ylabel="layer, head")
    query_line = ax_row.axvline(0, color=OKABE_ITO[5], lw=1.5, label="newest token")
    ax_row.legend(loc="lower left", fontsize=7, bbox_to_anchor=(0.0, 1.08), frameon=False)
    steps = np.arange(1, N + 1)
    curves = cache_curves(trace)
    for i, (kv, curve) in enumerate(curves.items()):
        name = "MHA" if kv == H else "MQA" if kv == 1 else "GQA"
        mine = kv == config.kv_heads
        ax_mem.plot(
            steps,
            curve / 1024,
            "o-" if mine else "--",
            color=OKABE_ITO[(5, 6, 3, 1, 2, 7)[i % 6]],
            lw=2 if mine else 1,
            ms=3,
            label=f"{name}, {kv} kv heads" + (" (this model)" if mine else ""),
        )
    (marker,) = ax_mem.plot([], [], "o", ms=11, mfc="none", mec=OKABE_ITO[0], mew=2)
    top = max(curve.max() for curve in curves.values()) / 1024
    ax_mem.set(
        xlabel="generation step",
        ylabel="KV cache (KiB, float32)",
        xlim=(0.5, N + 0.5),
        ylim=(0, 1.7 * top),  # room for the legend above the lines
    )
    ax_mem.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_mem.legend(fontsize=7, loc="upper left")

    def update(step: int) -> dict[str, object]:
        state = kv_cache_state(trace, step)
        image.set_data(state["weights"])
        query_line.set_xdata([state["query_position"]] * 2)
        marker.set_data([step], [state["cache_nbytes"] / 1024])
        ax_row.set_title(
            f"step {step}: the token at position {state['query_position']} attends over "
            f"{state['cache_len']} cached keys, writes '{_token_label(state['predicted'])}'",
            fontsize=9,
        )
        ax_mem.set_title(f"cache: {state['cache_nbytes']:,} bytes", fontsize=9)
        return state

    return update, [image, query_line, marker, ax_row.title, ax_mem.title]


def build_kv_cache_view(trace: DecodingTrace, step: int = 1) -> View:
    """The interactive view: an ``IntSlider`` ``step`` over 1..N and the two panels.

    ``view.state`` holds the last :func:`kv_cache_state`.

    Taught in chapters/10_causal_decoding_and_kv_cache.ipynb.
    """
    control = widgets.IntSlider(
        value=step, min=1, max=trace.num_steps, description="step", continuous_update=True
    )
    live = LiveFigure(figsize=(10.0, 3.4))
    view = View({"step": control}, live)
    redraw_step, animated = draw_kv_cache(live.figure, trace)
    live.animate(*animated)  # a move changes the row, the markers and the titles only

    def update(_change: object = None) -> None:
        view.state = redraw_step(int(control.value))
        live.redraw()

    control.observe(update, names="value")
    update()
    return view


def chapter_trace() -> DecodingTrace:
    """The chapter's model and prompt: train the tiny decoder (seed 0), trace one reversal.

    Taught in chapters/10_causal_decoding_and_kv_cache.ipynb.
    """
    from ..decoder import VOCAB_SIZE, reversal_task, train_decoder

    length = 12
    torch.manual_seed(0)
    model = TinyDecoder(DecoderConfig(VOCAB_SIZE, max_len=2 * length + 1))
    train_decoder(model, length, steps=100, seed=0)
    sequence = reversal_task(1, length, torch.Generator().manual_seed(2))[0]  # test_set[0]
    return decoding_trace(model, sequence[: length + 1], length)


def static_twin_frames() -> tuple[str, list[float], Callable[[float], Figure]]:
    """The site's static twin: (label, one frame per generation step, draw one frame).

    Taught in chapters/10_causal_decoding_and_kv_cache.ipynb.
    """
    trace = chapter_trace()

    def frame(value: float) -> Figure:
        figure = Figure(figsize=(10.0, 3.4), layout="constrained")
        draw_kv_cache(figure, trace)[0](int(round(value)))
        return figure

    return "generation step", [float(s) for s in range(1, trace.num_steps + 1)], frame
