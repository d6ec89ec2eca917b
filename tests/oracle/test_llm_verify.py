"""Verifying a committed LLM trace from opened positions (oracle.compute.llm.verify).

On SmolLM2-135M: honest traces pass (0 false positives over > 1,000 opened rows per map), with
the largest honest ratio a quarter or less of its constant; a worker that zeroes a block
(skips it), truncates attention to a window, computes with a different model (1% weight noise,
or one map of every block scaled by 1% or 0.1%), or reports a token other than the argmax is
refused. On a
tiny synthetic model, 1,000 single-entry corruptions of 1% of a row's RMS: every one at an
opened position is caught, and one at an unopened position is not (what sampling costs,
as the module docstring states).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from gguf import GGMLQuantizationType as QT

import oracle.compute.llm.forward_pass as fp
from oracle.compute.llm import DEFAULT_MODEL_FILE, LlamaModel, load_llama_gguf
from oracle.compute.llm.gguf_model import LlamaWeights
from oracle.compute.llm.trace import LlmTrace, TraceBuffer, traced_generate
from oracle.compute.llm.verify import (
    FREIVALDS_C,
    LINEAR_C,
    LlmCheck,
    answer_challenge,
    llm_challenge,
    model_checks,
    prepare_freivalds,
    verify_answer,
)
from tests.oracle.test_llm_model import _synthetic_weights, _write_gguf

MODEL_PATH = Path(__file__).resolve().parents[2] / ".pouw" / "models" / DEFAULT_MODEL_FILE
TAG = b"\x42" * 32


def _check(
    weights: LlamaWeights, trace: LlmTrace, seed: int, *, tokens: tuple[int, ...] | None = None
) -> LlmCheck:
    """Commit, challenge, answer and verify ``trace`` against ``weights`` (the true model)."""
    tree = trace.main_tree()
    roots = trace.roots(tree)
    ch = llm_challenge(weights, len(trace.prompt), trace.positions, seed, TAG)
    ans = answer_challenge(trace, ch, tree)
    prep = prepare_freivalds(weights, ch)
    return verify_answer(
        weights,
        trace.prompt,
        trace.tokens if tokens is None else tokens,
        roots,
        ans,
        ch,
        prep,
        model_checks(weights),
        measure=True,
    )


@pytest.fixture(scope="module")
def smol() -> LlamaModel:
    if not MODEL_PATH.is_file():
        pytest.skip(f"{MODEL_PATH} absent: `make setup` fetches it")
    return load_llama_gguf(MODEL_PATH)


PROMPT = tuple(range(1000, 1040))  # 40 tokens


def test_smollm2__honest_traces__pass_with_margin__no_false_positive(smol: LlamaModel) -> None:
    """Honest traces of several prompts and seeds: every check of every map passes, over
    more than 1,000 opened rows per map, with the largest ratio far inside its constant."""
    w = smol.weights
    rng = np.random.default_rng(5)
    buffer = TraceBuffer()
    rows_checked = 0
    worst_lin: dict[str, float] = {}
    worst_frv = 0.0
    for length in (40, 97):
        prompt = tuple(int(i) for i in rng.integers(3, w.config.vocab_size, length))
        trace = traced_generate(w, prompt, 8, eos_id=None, buffer=buffer)
        for seed in (1, 2):
            res = _check(w, trace, seed)
            assert res.ok, res.reason
            rows_checked += int(res.details["opened"]) * w.config.n_layers
            worst_frv = max(worst_frv, res.worst_freivalds_ratio)
            ratios = res.details["linear_ratios"]
            assert isinstance(ratios, dict)
            for name, value in ratios.items():
                worst_lin[name] = max(worst_lin.get(name, 0.0), value)
    assert rows_checked >= 1_000  # per map: each opened row checks every map once
    # in u·‖x‖·‖W‖_F (Freivalds) and u·√k·‖x‖·‖w_j‖ (recomputed maps): measured 1.4 and 0.3
    assert 0 < worst_frv < FREIVALDS_C / 4
    assert set(worst_lin) == {"attn_k", "attn_v", "attn_output"}
    assert all(0 < v < LINEAR_C / 4 for v in worst_lin.values()), worst_lin


def _cheat(weights: LlamaWeights, **layer_changes: object) -> LlamaWeights:
    layers = list(weights.layers)
    for key, value in layer_changes.items():
        idx, name = key.split("__")
        layers[int(idx[1:])] = dataclasses.replace(layers[int(idx[1:])], **{name: value})
    return dataclasses.replace(weights, layers=tuple(layers))


def test_smollm2__cheats__refused(smol: LlamaModel, monkeypatch: pytest.MonkeyPatch) -> None:
    w = smol.weights
    lw = w.layers[7]
    # (a) block 7 skipped: its attention and FFN contribute nothing
    skipped = _cheat(
        w, b7__attn_output=np.zeros_like(lw.attn_output), b7__ffn_down=np.zeros_like(lw.ffn_down)
    )
    res = _check(w, traced_generate(skipped, PROMPT, 4, eos_id=None), 5)
    assert not res.ok and res.reason.startswith("block 7:"), res.reason
    # (b) another model of the same shape: every linear map off by 1% noise, about what
    # another quantization of the same network gives
    rng = np.random.default_rng(0)

    def noisy(m: np.ndarray) -> np.ndarray:
        return (m * (1 + 0.01 * rng.standard_normal(m.shape))).astype(np.float32)

    maps = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")
    other = dataclasses.replace(
        w,
        layers=tuple(
            dataclasses.replace(x, **{m: noisy(getattr(x, m)) for m in maps}) for x in w.layers
        ),
    )
    res = _check(w, traced_generate(other, PROMPT, 4, eos_id=None), 6)
    assert not res.ok and res.reason.startswith("block 0:"), res.reason
    # ... or one map of every block scaled a little: q by 1% (q is recomputed, not
    # committed: caught through attention), ffn_up by 0.1% (Freivalds), v by 0.1%
    for name, factor, where in (
        ("attn_q", 1.01, "attention·Wo"),
        ("ffn_up", 1.001, "ffn_up fails Freivalds"),
        ("attn_v", 1.001, "committed values"),
    ):
        scaled = dataclasses.replace(
            w,
            layers=tuple(
                dataclasses.replace(x, **{name: getattr(x, name) * np.float32(factor)})
                for x in w.layers
            ),
        )
        res = _check(w, traced_generate(scaled, PROMPT, 4, eos_id=None), 6)
        assert not res.ok and where in res.reason, (name, res.reason)
    # (c) attention truncated to the last 8 keys
    real = fp._attention

    def windowed(q, keys, values, cfg, start):  # type: ignore[no-untyped-def]
        lo = max(0, keys.shape[1] - 8) if q.shape[0] == 1 else 0
        if lo:
            return real(q, keys[:, lo:], values[:, lo:], cfg, start - lo)
        return real(q, keys, values, cfg, start)

    monkeypatch.setattr(fp, "_attention", windowed)
    cut = traced_generate(w, PROMPT, 4, eos_id=None)
    monkeypatch.setattr(fp, "_attention", real)
    res = _check(w, cut, 7)
    assert not res.ok, res.reason
    # (d) the trace honest, a reported token not the argmax
    honest = traced_generate(w, PROMPT, 4, eos_id=None)
    assert _check(w, honest, 8).ok
    changed = (*honest.tokens[:-1], (honest.tokens[-1] + 1) % w.config.vocab_size)
    res = _check(w, honest, 8, tokens=changed)
    assert not res.ok and "argmax" in res.reason, res.reason
    earlier = ((honest.tokens[0] + 1) % w.config.vocab_size, *honest.tokens[1:])
    res = _check(w, honest, 8, tokens=earlier)  # fed back: the next position's input is wrong
    assert not res.ok, res.reason


# --- one corrupted entry, 1,000 trials, on a tiny model -------------------------------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> LlamaModel:
    path = tmp_path_factory.mktemp("tiny") / "tiny.gguf"
    _write_gguf(path, _synthetic_weights(3, False), QT.Q8_0)
    return load_llama_gguf(path)


def test_tiny__one_entry_off_by_one_percent__caught_wherever_opened(tiny: LlamaModel) -> None:
    w = tiny.weights
    cfg = w.config
    prompt = tuple(range(3, 43))  # 40 tokens; T = 47 positions with 8 new
    honest = traced_generate(w, prompt, 8, eos_id=None)
    assert _check(w, honest, 0).ok
    rng = np.random.default_rng(11)
    caught_opened = opened_trials = missed_unopened = unopened_trials = 0
    width = honest.main.shape[2]
    for trial in range(1_000):
        seed = 1_000 + trial
        layer = int(rng.integers(0, cfg.n_layers))
        pos = int(rng.integers(0, honest.positions))
        col = int(rng.integers(0, width))
        bad = dataclasses.replace(honest, main=honest.main.copy())
        row = bad.main[layer, pos]
        row[col] += np.float32(0.01 * np.sqrt(np.mean(row.astype(np.float64) ** 2)))
        opened = pos in set(llm_challenge(w, len(prompt), honest.positions, seed, TAG).positions)
        res = _check(w, bad, seed)
        if opened:
            opened_trials += 1
            caught_opened += int(not res.ok)
        else:
            unopened_trials += 1
            missed_unopened += int(res.ok)
    assert opened_trials + unopened_trials == 1_000
    # 16 sampled prompt positions + the 8 that produced tokens, of T = 47
    assert abs(opened_trials - 1_000 * 24 / 47) < 80
    assert caught_opened == opened_trials
    assert missed_unopened == unopened_trials  # sampling's cost, stated, not hidden
