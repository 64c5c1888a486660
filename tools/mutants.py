"""Perturb the package and check that the unit tests notice (a test that cannot fail is a defect).

    python tools/mutants.py            # every mutant below; exit 1 if any survives

Each mutant is one small, plausible bug applied to a copy of src/ in a temporary folder
(never to the working tree), put first on PYTHONPATH for one pytest run of its tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (module, original text, mutated text, the test file that must catch it)
MUTANTS: list[tuple[str, str, str, str]] = [
    # masking: the masked softmax, the masks and how they combine
    (
        "masking.py",
        "return torch.where(keep, weights, 0.0).to(X.dtype)",
        "return weights.to(X.dtype)",
        "test_masking.py",
    ),
    (
        "masking.py",
        "return scores.masked_fill_(~keep, 0.0).to(X.dtype)",
        "return scores.to(X.dtype)",
        "test_masking.py",
    ),
    (
        "masking.py",
        "positions < valid_lens.unsqueeze(-1)",
        "positions <= valid_lens.unsqueeze(-1)",
        "test_masking.py",
    ),
    (
        "masking.py",
        "torch.softmax(scores, dim=-1, out=scores)",
        "torch.softmax(scores, dim=1, out=scores)",
        "test_masking.py",
    ),
    ("masking.py", "valid_lens.min() < 0 or", "False and", "test_masking.py"),
    (
        "masking.py",
        "return cols <= rows + (K - Q)",
        "return cols <= rows",
        "test_attention_core.py",
    ),
    (
        "masking.py",
        "keep = mask if keep is None else keep & mask",
        "keep = mask if keep is None else keep | mask",
        "test_attention_core.py",
    ),
    # scoring: the scores, the shared forward, the fused path
    ("scoring.py", "/ math.sqrt(d)", "/ d", "test_scoring.py"),
    (
        "scoring.py",
        "q.unsqueeze(-2) + k.unsqueeze(-3)",
        "q.unsqueeze(-2) - k.unsqueeze(-3)",
        "test_scoring.py",
    ),
    (
        "scoring.py",
        "queries @ Wk.transpose(-2, -1)",
        "queries @ Wk.transpose(-2, -1) / 2",
        "test_scoring.py",
    ),
    (
        "scoring.py",
        "dropped = weights if dropout is None else dropout(weights)",
        "dropped = weights",
        "test_attention_core.py",
    ),
    ("scoring.py", "return out.masked_fill(~has_key, 0.0)", "return out", "test_attention_core.py"),
    # multihead: heads, grouped key-value heads, masks shared over heads
    (
        "multihead.py",
        "return X.transpose(1, 2)  # (B, H, T, Dh): transpose",
        "return X.reshape(B, num_heads, T, -1)  #",
        "test_multihead.py",
    ),
    (
        "multihead.py",
        "heads = heads * head_mask",
        "heads = heads + 0 * head_mask",
        "test_multihead.py",
    ),
    (
        "multihead.py",
        "k = k.repeat_interleave(H // Hkv, dim=1)",
        "k = k.repeat(1, H // Hkv, 1, 1)",
        "test_attention_core.py",
    ),
    (
        "multihead.py",
        "mask = mask.unsqueeze(1)",
        "mask = mask.unsqueeze(-1)",
        "test_attention_core.py",
    ),
    # the KV cache and the cross-attention layer built on the multi-head one
    (
        "kv_cache.py",
        "self.values = torch.cat([self.values, values], dim=-2)",
        "self.values = torch.cat([values, self.values], dim=-2)",
        "test_attention_core.py",
    ),
    ("kv_cache.py", "t.numel() * t.element_size()", "t.numel()", "test_attention_core.py"),
    (
        "cross_attention.py",
        "return self.norm(queries + attended), weights",
        "return self.norm(attended), weights",
        "test_cross_attention.py",
    ),
    # flash attention, the allocation counter and the block-size view (chapter 11)
    ("flash.py", "acc = rescale * acc + p @ v_j", "acc = acc + p @ v_j", "test_flash.py"),
    (
        "flash.py",
        "torch.arange(start, stop, device=device) <= positions",
        "torch.arange(start, stop, device=device) < positions",
        "test_flash.py",
    ),
    (
        "flash.py",
        "if is_causal and stop - 1 > K - Q:",
        "if is_causal and start > K - Q:",
        "test_flash.py",
    ),
    ("cost.py", "self.live -= self.sizes.pop(key)", "self.sizes.pop(key)", "test_cost.py"),
    (
        "views/flash_blocks.py",
        "abs(math.log(run.block_size) - math.log(block_size))",
        "abs(run.block_size - block_size)",
        "test_views_flash_blocks.py",
    ),
    (
        "checks.py",
        "history[index] = history.get(index, True) and agrees",
        "history[index] = True",
        "test_checks.py",
    ),
    # positions (chapter 08)
    (
        "position.py",
        "table[:, 1::2] = torch.cos(angles)",
        "table[:, 1::2] = torch.sin(angles)",
        "test_position.py",
    ),
    (
        "position.py",
        "torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1)",
        "torch.stack((even * cos + odd * sin, odd * cos - even * sin), dim=-1)",
        "test_position.py",
    ),
    (
        "position.py",
        "exponents = torch.arange(0, num_hiddens, 2, dtype=dtype) / num_hiddens",
        "exponents = torch.arange(0, num_hiddens // 2, dtype=dtype) / num_hiddens",
        "test_position.py",
    ),
    ("position.py", "self.P[:, :T, :]", "self.P[:, 1 : T + 1, :]", "test_position.py"),
    ("position.py", "if T > self.max_len:", "if T > self.max_len + 1:", "test_position.py"),
    (
        "position.py",
        "blocks = torch.stack((torch.stack((cos, sin), -1), torch.stack((-sin, cos), -1)), -2)",
        "blocks = torch.stack((torch.stack((cos, -sin), -1), torch.stack((sin, cos), -1)), -2)",
        "test_position.py",
    ),
    (
        "views/position_similarity.py",
        "return torch.cos(k[:, None] * omega).mean(-1)",
        "return torch.cos(k[:, None] * omega).sum(-1)",
        "test_views_position_similarity.py",
    ),
    (
        "views/position_similarity.py",
        "keys = k.double() + P[m[:, None] + o]",
        "keys = k.double() + P[o]",
        "test_views_position_similarity.py",
    ),
    (
        "views/position_similarity.py",
        "moved.set_data([0, np.sin(turned)], [0, np.cos(turned)])",
        "moved.set_data([0, np.cos(turned)], [0, np.sin(turned)])",
        "test_views_position_similarity.py",
    ),
    # the encoder-decoder (chapter 09)
    (
        "seq2seq.py",
        "valid_lens[:, None] - 1 - positions",
        "valid_lens[:, None] - positions",
        "test_seq2seq.py",
    ),
    (
        "seq2seq.py",
        "outputs = outputs.masked_fill(~keep[..., None], 0.0)",
        "outputs = outputs",
        "test_seq2seq.py",
    ),
    (
        "seq2seq.py",
        "query = state.hidden[:, None]",
        "query = state.context[:, None]",
        "test_seq2seq.py",
    ),
    (
        "seq2seq.py",
        "state.enc_outputs, state.enc_outputs, state.valid_lens",
        "state.enc_outputs, state.enc_outputs, None",
        "test_seq2seq.py",
    ),
    ("seq2seq.py", "y = logits.argmax(dim=-1)", "y = logits.argmin(dim=-1)", "test_seq2seq.py"),
    (
        "seq2seq.py",
        "scores = (enc_outputs @ s_t[:, :, None]).squeeze(-1)",
        "scores = (enc_outputs @ s_prev[:, :, None]).squeeze(-1)",
        "test_seq2seq.py",
    ),
    ("seq2seq.py", 'raise _fail(case, f"likely mistake: {message}")', "pass", "test_seq2seq.py"),
    # the tiny decoder and the KV-cache view (chapter 10)
    (
        "decoder.py",
        "start = 0 if kv_caches is None else len(kv_caches[0])",
        "start = 0",
        "test_decoder.py",
    ),
    (
        "decoder.py",
        "Y, Y, Y, is_causal=True, kv_cache=kv_cache",
        "Y, Y, Y, is_causal=False, kv_cache=kv_cache",
        "test_decoder.py",
    ),
    (
        "decoder.py",
        "feed = next_token if use_cache else tokens",
        "feed = tokens",
        "test_decoder.py",
    ),
    ("decoder.py", "+ 2 * n * T * D +", "+ n * T * D +", "test_decoder.py"),
    (
        "decoder.py",
        "return 2 * config.num_layers * config.kv_heads",
        "return config.num_layers * config.kv_heads",
        "test_decoder.py",
    ),
    ("decoder.py", "digits.flip(1)", "digits", "test_decoder.py"),
    ("decoder.py", "X = X + out  # (B, T, D)", "X = out  # (B, T, D)", "test_decoder.py"),
    (
        "views/kv_cache.py",
        "w[0, :, -1] for w in weights",
        "w[0, :, 0] for w in weights",
        "test_views_kv_cache.py",
    ),
    (
        "views/kv_cache.py",
        '"query_position": K - 1,',
        '"query_position": K,',
        "test_views_kv_cache.py",
    ),
    (
        "views/kv_cache.py",
        "marker.set_data([step],",
        "marker.set_data([step - 1],",
        "test_views_kv_cache.py",
    ),
    ("plotting.py", "        plt.close(self)\n", "", "test_plotting.py"),
    (
        "head_importance.py",
        "    xi = _ones(model, num_heads)\n",
        "    xi = torch.ones(num_heads)\n",
        "test_head_importance.py",
    ),
    # live views and their static twins
    (
        "views/live.py",
        'header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)',
        'header = struct.pack(">IIBBBBB", h, w, 8, 2, 0, 0, 0)',
        "test_views_live.py",
    ),
    (
        "views/live.py",
        "self._pending = work",
        "self._pending = self._pending or work",
        "test_views_live.py",
    ),
    ("views/live.py", 'figure.set_layout_engine("none")', "pass", "test_views_live.py"),
    (
        "views/kernel_width.py",
        "animated = [pred_line, ax_fit.title, mesh, colorbar.ax.yaxis, now, marker]",
        "animated = [pred_line, mesh, colorbar.ax.yaxis, now, marker]",
        "test_views_live.py",
    ),
    ("views/static.py", "if frames and png == frames[-1]:", "if False:", "test_views_static.py"),
    ("views/static.py", "text.set_fontsize(floor_pt)", "pass", "test_views_static.py"),
    (
        "views/entropy_alpha.py",
        "    require_target_entropy(alpha, num_keys)",
        "    pass",
        "test_views_entropy_alpha.py",
    ),
    ("kernel_regression.py", "return -(u**2) / 2", "return -(u**2)", "test_kernel_regression.py"),
    (
        "kernel_regression.py",
        "torch.softmax(logits, dim=-1)",
        "torch.softmax(logits, dim=0)",
        "test_kernel_regression.py",
    ),
    (
        "kernel_regression.py",
        "u.abs() <= 1, torch.zeros_like(u)",
        "u.abs() < 0.5, torch.zeros_like(u)",
        "test_kernel_regression.py",
    ),
    (
        "regularization.py",
        "torch.where(positive, weights, torch.ones_like(weights))",
        "weights",
        "test_regularization.py",
    ),
    (
        "regularization.py",
        "-(weights * torch.log(safe))",
        "-(weights * torch.log2(safe))",
        "test_regularization.py",
    ),
    (
        "regularization.py",
        "if not 0.0 <= value <= upper + 1e-6:",
        "if value < 0:",
        "test_regularization.py",
    ),
    (
        "plotting.py",
        "fig.colorbar(image, ax=axes, shrink=0.6, label=colorbar_label)",
        "pass",
        "test_plotting.py",
    ),
    ("plotting.py", "FigureClass=HeatmapFigure,", "", "test_plotting.py"),
    (
        "checks.py",
        'raise AssertionError(f"{where}: likely mistake: {message}")',
        "pass",
        "test_checks.py",
    ),
]


def run(module: str, old: str, new: str, test: str, workdir: Path) -> bool:
    """Return True if the tests caught the mutant."""
    src = workdir / "src"
    shutil.rmtree(src, ignore_errors=True)
    shutil.copytree(ROOT / "src", src)
    path = src / "attention_course" / module
    text = path.read_text()
    if old not in text:
        raise SystemExit(f"mutant no longer applies: {module}: {old!r}")
    path.write_text(text.replace(old, new, 1))
    env = {**os.environ, "PYTHONPATH": str(src)}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-x",
            "-q",
            "-p",
            "no:cacheprovider",
            str(ROOT / "tests" / test),
        ],
        env=env,
        capture_output=True,
        cwd=ROOT,
    )
    return result.returncode != 0


def main() -> int:
    survivors = 0
    with tempfile.TemporaryDirectory() as tmp:
        for module, old, new, test in MUTANTS:
            caught = run(module, old, new, test, Path(tmp))
            survivors += not caught
            print(
                f"{'caught  ' if caught else 'SURVIVED'} {module}: {old!r} -> {new!r}", flush=True
            )
    print(f"{len(MUTANTS) - survivors}/{len(MUTANTS)} mutants caught")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
