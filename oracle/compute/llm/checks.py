"""The elementwise checks of an LLM forward pass, each with the fp32 tolerance it is held to.

An oracle verifies a decoder's forward pass from the tensors the worker committed to (the
trace): every linear map by Freivalds (:mod:`oracle.compute.freivalds`, the fp32 bound τ), and
everything between them here, recomputed in float64 from the committed *inputs* of each step
and compared with its committed *output*. What holds the pieces together is that each check
reads the tensors the neighbouring checks read: the committed output of one step is the
committed input of the next, so a wrong value anywhere fails the first check that reads it.

Notation: u = 2^-24 (fp32 unit roundoff), γ_j = j·u/(1 − j·u). "Honest" means computed in
fp32 (or wider) in any order, with FMA or not; every bound below is one an honest worker cannot
exceed (a rounding-error bound in the style of Higham, *Accuracy and Stability of Numerical
Algorithms*, ch. 3), with the float64 evaluation's own error (≤ 2^-50 relative here) inside the
margin. Each check returns a boolean per row (position): True where every entry is within its
tolerance. NaN or Inf anywhere fails.

* **RMSNorm** y = x / sqrt(mean(x²) + ε) · g over rows of width d: the sum of squares has
  relative error ≤ γ_d (its terms are non-negative); the mean, +ε, sqrt, division, and the two
  products add at most 6u: |ŷ − y| ≤ (γ_d + 8u)·|y| + 2^-126.
* **RoPE** (rotation of adjacent pairs (x_2i, x_2i+1) by pos·θ_i, θ_i = base^(−2i/head_dim), the
  rotation llama.cpp applies to GGUF's permuted Q/K weights): the *angles* are part of the
  protocol — computed in float64, cos and sin rounded once to fp32 — so each output is two fp32
  products and a sum of rounded values: |ŷ − y| ≤ 4u·(|x_2i| + |x_2i+1|) + 2^-126. (fp32 angles,
  as llama.cpp computes them, err by pos·θ·u, 5·10^-4 at position 8192: not an honest
  difference this check would forgive; the worker here follows the float64 rule.)
* **Causal grouped-query attention**, per query head h (KV head h·H_kv/H) and position t:
  s_j = q_t·k_j/√d_h (j ≤ t), p = softmax(s), o_t = Σ_j p_j v_j. The fp32 scores err by
  e_j ≤ γ_{d_h}·(|q_t|·|k_j|)/√d_h + u·|s_j|; a softmax of scores perturbed by at most
  E = max_j e_j (with its own exp, sum and division rounding, (t + 6)u relative) moves each
  p_j by at most p_j·(2E + (t + 6)u)·(1 + 2E); the weighted sum adds γ_{t+1}. Per output entry:
  |ô − o| ≤ [(2E + (t + 6)u)(1 + 2E) + γ_{t+1}]·(1 + γ_{t+1})·Σ_j p_j|v_j| + 2^-126. The
  bound is first order in E; it is used only where 2E ≤ 1/4 (else the row fails as unverifiable
  — scores that large do not occur in a sane model: |s| would need |q||k| ~ 2^21·√d_h).
* **SwiGLU** s = silu(g)·up = g/(1 + e^−g)·up: exp, add, divide, two products: |ŝ − s| ≤
  10u·|s| + |g·up|·2^-126 + 2^-126 (the middle term: e^−g overflows fp32 for g < −88.7, where
  an fp32 silu is 0 and the true one is below |g|·2^-128).
* **Residual add** y = a + b: one fp32 addition, |ŷ − y| ≤ u·|y| (an honest fp32 add is exact
  up to that rounding; a worker adding in float64 and rounding once is within it too).
* **Embedding lookup**: the committed row of each position equals the dequantized table row of
  its token, exactly (a copy).
* **Tokens**: each generated token is an argmax of its committed logits row, whose entries the
  output head's Freivalds check binds to the true logits within τ; a near-tie within that
  tolerance therefore lets either token through, as the spec of the kind says.

What a deviation costs to hide: an entry off by more than its tolerance fails its row
deterministically (there is no sampling in these checks: every position of every layer is
checked); only Freivalds' checks of the linear maps are probabilistic, with per-round miss
probability ≤ min(1/2, τ_i/|d| + 2^-24) for a row whose largest wrong entry is off by |d|
(:mod:`oracle.compute.freivalds`).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "U32",
    "attention_ok",
    "embedding_ok",
    "gamma32",
    "residual_ok",
    "rmsnorm_ok",
    "rope_angles",
    "rope_ok",
    "rope_reference",
    "swiglu_ok",
    "token_ok",
]

#: fp32 unit roundoff.
U32 = 2.0**-24
#: Absolute slack for fp32 underflow (an honest denormal result differs by at most this).
_TINY = 2.0**-126


def gamma32(j: int) -> float:
    """γ_j = j·u/(1 − j·u) for u = 2^-24."""
    return j * U32 / (1 - j * U32)


def _rows_ok(diff: np.ndarray, tol: np.ndarray) -> np.ndarray:
    """True per row where every |diff| ≤ tol (NaN fails)."""
    with np.errstate(invalid="ignore"):
        ok = np.abs(diff) <= tol
    return np.asarray(ok.reshape(ok.shape[0], -1).all(axis=1))


def rmsnorm_ok(x: np.ndarray, g: np.ndarray, y: np.ndarray, eps: float) -> np.ndarray:
    """Rows of ``y`` (T×d, committed) against RMSNorm(``x``)·``g`` recomputed in float64."""
    x64 = x.astype(np.float64)
    d = x.shape[-1]
    with np.errstate(over="ignore", invalid="ignore"):
        scale = 1.0 / np.sqrt(np.mean(x64 * x64, axis=-1, keepdims=True) + eps)
        ref = x64 * scale * g.astype(np.float64)
        tol = (gamma32(d) + 8 * U32) * np.abs(ref) + _TINY
        return _rows_ok(y.astype(np.float64) - ref, tol)


def rope_angles(positions: np.ndarray, head_dim: int, base: float) -> tuple[np.ndarray, np.ndarray]:
    """(cos, sin) of pos·θ_i, θ_i = base^(−2i/head_dim), computed in float64 and rounded to
    fp32 (the protocol's rule): arrays of shape (T, head_dim/2)."""
    i = np.arange(head_dim // 2, dtype=np.float64)
    theta = base ** (-2.0 * i / head_dim)
    ang = positions.astype(np.float64)[:, None] * theta[None, :]
    return np.cos(ang).astype(np.float32), np.sin(ang).astype(np.float32)


def rope_reference(x: np.ndarray, positions: np.ndarray, head_dim: int, base: float) -> np.ndarray:
    """RoPE of ``x`` (T × heads·head_dim) in float64 with the protocol's fp32 cos/sin."""
    cos, sin = rope_angles(positions, head_dim, base)
    t = x.shape[0]
    xr = x.astype(np.float64).reshape(t, -1, head_dim // 2, 2)
    c = cos.astype(np.float64)[:, None, :]
    s = sin.astype(np.float64)[:, None, :]
    out = np.empty_like(xr)
    out[..., 0] = xr[..., 0] * c - xr[..., 1] * s
    out[..., 1] = xr[..., 0] * s + xr[..., 1] * c
    return out.reshape(x.shape)


def rope_ok(
    x: np.ndarray, y: np.ndarray, positions: np.ndarray, head_dim: int, base: float
) -> np.ndarray:
    """Rows of ``y`` (committed) against RoPE(``x``) (module docstring)."""
    ref = rope_reference(x, positions, head_dim, base)
    t = x.shape[0]
    pairs = np.abs(x.astype(np.float64)).reshape(t, -1, head_dim // 2, 2).sum(axis=-1)
    tol = 4 * U32 * np.repeat(pairs, 2, axis=-1).reshape(x.shape) + _TINY
    return _rows_ok(y.astype(np.float64) - ref, tol)


def attention_ok(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    out: np.ndarray,
    n_heads: int,
    n_kv_heads: int,
    first_position: int = 0,
) -> np.ndarray:
    """Rows of ``out`` (T × n_heads·d_h, committed) against causal grouped-query attention of
    ``q`` (T × n_heads·d_h, after RoPE) over ``k``, ``v`` (S × n_kv_heads·d_h, S ≥ T: every
    position up to the last query; query row i sits at position ``first_position + i``)."""
    t_rows = q.shape[0]
    s_rows = k.shape[0]
    d_h = q.shape[1] // n_heads
    group = n_heads // n_kv_heads
    q64 = q.astype(np.float64).reshape(t_rows, n_heads, d_h)
    k64 = k.astype(np.float64).reshape(s_rows, n_kv_heads, d_h)
    v64 = v.astype(np.float64).reshape(s_rows, n_kv_heads, d_h)
    o64 = out.astype(np.float64).reshape(t_rows, n_heads, d_h)
    scale = 1.0 / math.sqrt(d_h)
    ok = np.ones(t_rows, dtype=bool)
    pos = first_position + np.arange(t_rows)
    mask = np.arange(s_rows)[None, :] > pos[:, None]  # (T, S): True where not attended
    g_dh = gamma32(d_h)
    n_attended = pos + 1
    g_n = np.array([gamma32(int(n)) for n in n_attended])
    for h in range(n_heads):
        kv = h // group
        kh, vh = k64[:, kv, :], v64[:, kv, :]
        qh = q64[:, h, :]
        with np.errstate(over="ignore", invalid="ignore"):
            s = (qh @ kh.T) * scale
            s_abs = (np.abs(qh) @ np.abs(kh).T) * scale
            s = np.where(mask, -np.inf, s)
            p = np.exp(s - s.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            ref = p @ vh
            weight = p @ np.abs(vh)  # Σ_j p_j |v_j| per output entry
            e = np.where(mask, 0.0, g_dh * s_abs + U32 * np.abs(np.where(mask, 0.0, s)))
            big_e = e.max(axis=1)
            rel = ((2 * big_e + (n_attended + 6) * U32) * (1 + 2 * big_e) + g_n) * (1 + g_n)
            tol = rel[:, None] * weight + _TINY
            row_ok = _rows_ok(o64[:, h, :] - ref, tol) & (2 * big_e <= 0.25)
        ok &= row_ok
    return ok


def swiglu_ok(gate: np.ndarray, up: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Rows of ``s`` (committed) against silu(``gate``)·``up`` in float64."""
    g64 = gate.astype(np.float64)
    up64 = up.astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        ref = g64 / (1.0 + np.exp(-g64)) * up64
        # e^-g overflows fp32 for g < -88.7 (silu then 0, truly |g|·e^g < |g|·2^-128)
        tol = 10 * U32 * np.abs(ref) + np.abs(g64 * up64) * 2.0**-126 + _TINY
        return _rows_ok(s.astype(np.float64) - ref, tol)


def residual_ok(a: np.ndarray, b: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Rows of ``y`` (committed) against ``a + b``."""
    ref = a.astype(np.float64) + b.astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        return _rows_ok(y.astype(np.float64) - ref, U32 * np.abs(ref) + _TINY)


def embedding_ok(table: np.ndarray, tokens: np.ndarray, x0: np.ndarray) -> np.ndarray:
    """Rows of ``x0`` (committed) equal, exactly, the ``table`` rows of ``tokens``."""
    return np.asarray((x0 == table[tokens].astype(np.float32)).all(axis=1))


def token_ok(logits: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """Per row: the token is a maximal entry of its committed logits row (ties: any)."""
    finite = np.isfinite(logits).all(axis=1)
    chosen = logits[np.arange(len(tokens)), tokens]
    return np.asarray(finite & (chosen >= logits.max(axis=1)))
