"""The elementwise checks of an LLM forward pass (oracle.compute.llm.checks).

Honest fp32 computations — several summation orders and precisions, as different workers
would run them — pass every check (0 false positives over the trials below, at the model's
shapes and at 8x larger activations); one entry of one position off by 1% of its row's RMS
fails its row in every one of >= 1,000 trials per check; and the wrong implementations a
cheating or careless worker would run (RoPE one position off, fp32 angles at long positions,
no causal mask, attention to a window, the wrong KV head, a skipped norm) fail.
"""

from __future__ import annotations

import numpy as np
import pytest

from oracle.compute.llm.checks import (
    attention_ok,
    embedding_ok,
    residual_ok,
    rmsnorm_ok,
    rope_angles,
    rope_ok,
    swiglu_ok,
    token_ok,
)

D, HEADS, KV, DH, BASE, EPS = 576, 9, 3, 64, 100_000.0, 1e-5
F32 = np.float32


def _rms(row: np.ndarray) -> float:
    return float(np.sqrt(np.mean(row.astype(np.float64) ** 2)))


# --- honest fp32 implementations (what different workers might run) --------------------------


def rmsnorm32(x: np.ndarray, g: np.ndarray, eps: float, how: str) -> np.ndarray:
    if how == "f64":  # wider, then rounded once
        x64 = x.astype(np.float64)
        return (x64 / np.sqrt(np.mean(x64 * x64, -1, keepdims=True) + eps) * g).astype(F32)
    if how == "pairwise":
        ms = np.mean(x * x, axis=-1, keepdims=True, dtype=F32)
    else:  # a sequential sum, as a naive loop would
        ms = np.cumsum(x * x, axis=-1, dtype=F32)[:, -1:] / F32(x.shape[-1])
    return (x * (F32(1) / np.sqrt(ms + F32(eps)))) * g


def rope32(x: np.ndarray, positions: np.ndarray) -> np.ndarray:
    cos, sin = rope_angles(positions, DH, BASE)
    t = x.shape[0]
    xr = x.reshape(t, -1, DH // 2, 2)
    c, s = cos[:, None, :], sin[:, None, :]
    out = np.empty_like(xr)
    out[..., 0] = xr[..., 0] * c - xr[..., 1] * s
    out[..., 1] = xr[..., 0] * s + xr[..., 1] * c
    return out.reshape(x.shape)


def attention32(
    q: np.ndarray, k: np.ndarray, v: np.ndarray, *, causal: bool = True, window: int = 0,
    kv_of: int = 0, first: int = 0,
) -> np.ndarray:  # fmt: skip
    t, s_rows = q.shape[0], k.shape[0]
    qh = q.reshape(t, HEADS, DH)
    kh = k.reshape(s_rows, KV, DH)
    vh = v.reshape(s_rows, KV, DH)
    out = np.empty_like(qh)
    pos = first + np.arange(t)
    for h in range(HEADS):
        g = (h // (HEADS // KV) + kv_of) % KV
        s = (qh[:, h, :] @ kh[:, g, :].T) * F32(1 / np.sqrt(DH))
        if causal:
            s = np.where(np.arange(s_rows)[None, :] > pos[:, None], F32(-np.inf), s)
        if window:
            s = np.where(np.arange(s_rows)[None, :] <= pos[:, None] - window, F32(-np.inf), s)
        p = np.exp(s - s.max(axis=1, keepdims=True))
        p = p / p.sum(axis=1, keepdims=True)
        out[:, h, :] = p @ vh[:, g, :]
    return out.reshape(q.shape)


def swiglu32(g: np.ndarray, u: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return g / (F32(1) + np.exp(-g)) * u


def _acts(rng: np.random.Generator, t: int, width: int, scale: float) -> np.ndarray:
    x = rng.standard_normal((t, width)).astype(F32) * F32(scale)
    x[:, rng.integers(0, width, 3)] *= F32(20)  # a few outlier channels, as LLMs have
    return x


# --- honest traces pass ---------------------------------------------------------------------


@pytest.mark.parametrize("scale", [1.0, 8.0])
def test_honest_fp32__every_check_passes__no_false_positive(scale: float) -> None:
    rng = np.random.default_rng(1)
    failures = 0
    trials = 40
    for _ in range(trials):
        t = int(rng.integers(1, 24))
        x = _acts(rng, t, D, scale)
        g = (1 + rng.standard_normal(D) / 4).astype(F32)
        for how in ("f64", "pairwise", "sequential"):
            failures += int((~rmsnorm_ok(x, g, rmsnorm32(x, g, EPS, how), EPS)).sum())
        pos = rng.integers(0, 8192, t)
        q = _acts(rng, t, HEADS * DH, scale)
        failures += int((~rope_ok(q, rope32(q, pos), pos, DH, BASE)).sum())
        s_rows = t
        qq = rope32(_acts(rng, t, HEADS * DH, scale / 4), np.arange(t))
        kk = rope32(_acts(rng, s_rows, KV * DH, scale / 4), np.arange(s_rows))
        vv = _acts(rng, s_rows, KV * DH, scale)
        failures += int((~attention_ok(qq, kk, vv, attention32(qq, kk, vv), HEADS, KV)).sum())
        gate, up = _acts(rng, t, 1536, scale), _acts(rng, t, 1536, scale)
        failures += int((~swiglu_ok(gate, up, swiglu32(gate, up))).sum())
        a, b = _acts(rng, t, D, scale), _acts(rng, t, D, scale)
        failures += int((~residual_ok(a, b, a + b)).sum())
    assert failures == 0


def test_attention__decode_rows_against_the_cache__pass() -> None:
    """One new query row at position S-1 attending to S cached keys (what decoding checks)."""
    rng = np.random.default_rng(2)
    s_rows = 17
    q = rope32(_acts(rng, s_rows, HEADS * DH, 0.3), np.arange(s_rows))
    k = rope32(_acts(rng, s_rows, KV * DH, 0.3), np.arange(s_rows))
    v = _acts(rng, s_rows, KV * DH, 1.0)
    full = attention32(q, k, v)
    last = attention32(q[-1:], k, v, first=s_rows - 1)
    assert attention_ok(q[-1:], k, v, last, HEADS, KV, first_position=s_rows - 1).all()
    assert attention_ok(q, k, v, full, HEADS, KV).all()


# --- one entry off by 1% of its row's RMS: caught, every time --------------------------------


def _corrupt(y: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    bad = y.copy()
    row = int(rng.integers(0, y.shape[0]))
    col = int(rng.integers(0, y.shape[1]))
    sign = 1 if rng.random() < 0.5 else -1
    bad[row, col] += F32(sign * 0.01 * _rms(y[row]))
    return bad, row


def test_one_entry_off_by_one_percent_of_row_rms__caught_in_1000_of_1000_trials() -> None:
    rng = np.random.default_rng(3)
    trials = 1_000
    caught = {"rmsnorm": 0, "rope": 0, "attention": 0, "swiglu": 0, "residual": 0}
    t = 8
    x = _acts(rng, t, D, 1.0)
    g = (1 + rng.standard_normal(D) / 4).astype(F32)
    y_norm = rmsnorm32(x, g, EPS, "pairwise")
    pos = np.arange(t) + 4000
    q = _acts(rng, t, HEADS * DH, 1.0)
    y_rope = rope32(q, pos)
    qq = rope32(_acts(rng, t, HEADS * DH, 0.3), np.arange(t))
    kk = rope32(_acts(rng, t, KV * DH, 0.3), np.arange(t))
    vv = _acts(rng, t, KV * DH, 1.0)
    y_att = attention32(qq, kk, vv)
    gate, up = _acts(rng, t, 1536, 1.0), _acts(rng, t, 1536, 1.0)
    y_swi = swiglu32(gate, up)
    a, b = _acts(rng, t, D, 1.0), _acts(rng, t, D, 1.0)
    y_res = a + b
    for _ in range(trials):
        bad, row = _corrupt(y_norm, rng)
        caught["rmsnorm"] += int(not rmsnorm_ok(x, g, bad, EPS)[row])
        bad, row = _corrupt(y_rope, rng)
        caught["rope"] += int(not rope_ok(q, bad, pos, DH, BASE)[row])
        bad, row = _corrupt(y_att, rng)
        caught["attention"] += int(not attention_ok(qq, kk, vv, bad, HEADS, KV)[row])
        bad, row = _corrupt(y_swi, rng)
        caught["swiglu"] += int(not swiglu_ok(gate, up, bad)[row])
        bad, row = _corrupt(y_res, rng)
        caught["residual"] += int(not residual_ok(a, b, bad)[row])
    assert caught == dict.fromkeys(caught, trials)


# --- wrong implementations fail ---------------------------------------------------------------


def test_wrong_implementations__fail() -> None:
    rng = np.random.default_rng(4)
    t = 12
    pos = np.arange(t)
    q = _acts(rng, t, HEADS * DH, 1.0)
    assert not rope_ok(q, rope32(q, pos + 1), pos, DH, BASE).any()  # one position off
    # fp32 angles, as llama.cpp computes them, drift at long positions: refused there.
    far = np.arange(8000, 8000 + t)
    i = np.arange(DH // 2, dtype=F32)
    ang32 = far.astype(F32)[:, None] * (F32(BASE) ** (F32(-2) * i / F32(DH)))[None, :]
    xr = q.reshape(t, -1, DH // 2, 2)
    c, s = np.cos(ang32)[:, None, :], np.sin(ang32)[:, None, :]
    f32_angles = np.stack(
        [xr[..., 0] * c - xr[..., 1] * s, xr[..., 0] * s + xr[..., 1] * c], axis=-1
    ).reshape(q.shape)
    assert not rope_ok(q, f32_angles, far, DH, BASE).all()
    qq = rope32(_acts(rng, t, HEADS * DH, 0.3), pos)
    kk = rope32(_acts(rng, t, KV * DH, 0.3), pos)
    vv = _acts(rng, t, KV * DH, 1.0)
    no_mask = attention_ok(qq, kk, vv, attention32(qq, kk, vv, causal=False), HEADS, KV)
    assert not no_mask[:-1].any() and no_mask[-1]  # the last position sees everything anyway
    windowed = attention_ok(qq, kk, vv, attention32(qq, kk, vv, window=4), HEADS, KV)
    assert windowed[:4].all() and not windowed[4:].any()  # wrong wherever the window cuts
    assert not attention_ok(qq, kk, vv, attention32(qq, kk, vv, kv_of=1), HEADS, KV).any()
    x = _acts(rng, t, D, 3.0)
    g = np.ones(D, F32)
    assert not rmsnorm_ok(x, g, x, EPS).any()  # the norm skipped


def test_embedding_and_tokens() -> None:
    rng = np.random.default_rng(5)
    table = rng.standard_normal((50, 8)).astype(F32)
    tokens = np.array([3, 7, 7, 0])
    x0 = table[tokens].copy()
    assert embedding_ok(table, tokens, x0).all()
    x0[2, 5] = np.nextafter(x0[2, 5], F32(np.inf))  # one ulp
    assert embedding_ok(table, tokens, x0).tolist() == [True, True, False, True]
    logits = rng.standard_normal((3, 50)).astype(F32)
    best = logits.argmax(axis=1)
    assert token_ok(logits, best).all()
    logits[1, (best[1] + 1) % 50] = logits[1, best[1]]  # a tie: either token passes
    assert token_ok(logits, np.array([best[0], (best[1] + 1) % 50, best[2]])).all()
    assert not token_ok(logits, (best + 2) % 50).any()
    logits[2, 0] = np.nan
    assert token_ok(logits, best).tolist() == [True, True, False]
