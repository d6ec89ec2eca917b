"""Checking a committed LLM trace (:mod:`oracle.compute.llm.trace`) from a few opened positions.

**Challenge** (from the seed, after the commitment): every position that produced a token
(P − 1 … T − 1) and ``SAMPLED_PROMPT_POSITIONS`` prompt positions drawn without replacement,
opened in every block; and for each of ffn_gate, ffn_up and ffn_down a Freivalds matrix R of
``ROUNDS`` columns of ±[1, 2) entries (shared by the blocks).

**Answer** (the worker's): the opened main rows with their Merkle proofs, every K/V row and
every final row (the oracle hashes both tables itself), and the main root.

**Checks**, all positions of :class:`Opened` at once per block, in float64 from the committed
values (the tolerances are :mod:`oracle.compute.llm.checks`' and the ones stated here):

1. the three roots join to the committed trace root; each opened row's proof leads to the main
   root;
2. block 0's x_in is the embedding row of the position's token, exactly;
3. q, k, v recomputed from RMSNorm(x_in): the committed K/V row equals RoPE(k̂) and v̂ within
   ``lin_tol`` = (2d + 16)·u·(|a|·|W|) per entry (the worker's fp32 RMSNorm and product, and
   ours);
4. attention at the position recomputed from q̂ and every committed K/V row up to it, then
   attn_output: h_mid − x_in against att̂·Wo^T within the attention bound (q̂'s error
   included) carried through |Wo|, plus the product's and the residual add's rounding;
5. ffn_gate and ffn_up by Freivalds against RMSNorm(h_mid), ffn_down against
   silu(gate)·up with x_next − h_mid (x_next the next block's x_in, or the final row): per row
   |y·r − x̂·(Wᵀr)| ≤ ``FREIVALDS_C``·u·‖x̂‖₂·‖W‖_F + the input's own tolerance carried through
   |Wᵀr|. The fp32 bound γ_k|X||W||r| is thousands of times looser than honest errors here;
   this per-row scale is measured instead (``tests/oracle/test_llm_verify.py``: the largest
   honest ratio over every map and opened row, against ``FREIVALDS_C``);
6. at each position that produced a token: the logits recomputed (float32 GEMM) from the final
   row; the token must be within ``logit_tol`` of the row's maximum (a near-tie accepts either).

**Measured sensitivity (this first version; SmolLM2-135M, 40-token prompt).** Honest traces
pass with the largest Freivalds residual at 1.3 u·‖x̂‖·‖W‖_F (C = 64). Refused: a skipped
block, 1% noise on every weight (another quantization), attention truncated to 8 keys, a
token other than the argmax, any single entry off by 1% of its row's RMS at an opened position
(1,000 trials on a tiny model). Passed, and therefore the next step: attn_q scaled by 5% in
every block (q is recomputed, not committed, and the attention-output tolerance here is a
worst-case |·|·|W| chain, about 6% of |o|; it catches 20%), ffn_up scaled by 0.1% (the
RMSNorm rounding is carried through |Wᵀr| worst-case). The fix is the measured per-row scale
for every recomputed map too, as for the FFN's Freivalds term.

**What is caught.** Every opened (block, position) is checked in full, so a wrong value there
above its tolerance fails (Freivalds: a single wrong entry above τ always; see
:mod:`oracle.compute.freivalds`). Positions that produced tokens are all opened, in every
block. A deviation confined to unopened prompt positions (including their K/V rows, which later
positions read) is caught only if one of them is opened: with w of the P − 1 candidates
corrupted and s opened, P[miss] = C(P−1−w, s)/C(P−1, s). A worker that skips a block, runs
another model, or truncates attention changes every opened row (or every one past the window)
and is caught unless every opened row's error stays within tolerance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from oracle.compute.freivalds import float64_product
from oracle.compute.llm.checks import U32, rope_reference
from oracle.compute.llm.gguf_model import LlamaWeights
from oracle.compute.llm.trace import LlmTrace, main_width, trace_root
from oracle.compute.merkle import merkle_root, verify_openings
from oracle.compute.rng import challenge_generator

__all__ = [
    "FREIVALDS_C",
    "ROUNDS",
    "SAMPLED_PROMPT_POSITIONS",
    "LlmAnswer",
    "LlmChallenge",
    "LlmCheck",
    "ModelChecks",
    "answer_challenge",
    "llm_challenge",
    "model_checks",
    "prepare_freivalds",
    "verify_answer",
]

ROUNDS = 2
SAMPLED_PROMPT_POSITIONS = 16
#: Per-row Freivalds tolerance scale, in u·‖x̂‖₂·‖W‖_F (module docstring, item 5).
FREIVALDS_C = 64.0
#: The challenge stream of llm jobs (after the matmul ones of oracle.compute.rng).
_DOMAIN_LLM = 0x4C4C  # "LL"
_FFN = ("ffn_gate", "ffn_up", "ffn_down")
_ATTN = ("attn_q", "attn_k", "attn_v", "attn_output")


@dataclass(frozen=True)
class LlmChallenge:
    """Opened positions (sorted) and the Freivalds matrices, by map name."""

    positions: np.ndarray
    r: dict[str, np.ndarray]


def llm_challenge(
    weights: LlamaWeights, n_prompt: int, n_positions: int, seed: bytes | int, tag: bytes
) -> LlmChallenge:
    """The challenge of a job with ``n_prompt`` prompt tokens and ``n_positions`` = T."""
    cfg = weights.config
    gen = challenge_generator(seed, tag, _DOMAIN_LLM)
    candidates = max(0, n_prompt - 1)
    sampled = gen.choice(candidates, size=min(SAMPLED_PROMPT_POSITIONS, candidates), replace=False)
    produced = np.arange(n_prompt - 1, n_positions)
    positions = np.unique(np.concatenate([sampled.astype(np.int64), produced]))
    r = {}
    for name, n_out in (("ffn_gate", cfg.d_ff), ("ffn_up", cfg.d_ff), ("ffn_down", cfg.d_model)):
        frac = gen.integers(0, 1 << 23, size=(n_out, ROUNDS), dtype=np.int64)
        sign = np.where(gen.integers(0, 2, size=(n_out, ROUNDS)) == 1, -1.0, 1.0)
        r[name] = sign * (1.0 + frac * 2.0**-23)
    return LlmChallenge(positions, r)


@dataclass
class FreivaldsPrep:
    """Seed-only work: per block and FFN map, Wᵀr, |W|ᵀ|r| (float64) and ‖W‖_F."""

    wr: list[dict[str, tuple[np.ndarray, np.ndarray, float]]] = field(default_factory=list)


def prepare_freivalds(weights: LlamaWeights, ch: LlmChallenge) -> FreivaldsPrep:
    """Wᵀr for every FFN map of every block (one pass over those weights)."""
    prep = FreivaldsPrep()
    for layer in weights.layers:
        maps = {}
        for name in _FFN:
            w = getattr(layer, name)  # (n_out, n_in)
            r = ch.r[name]
            wr, wr_abs = float64_product(w.T, r, abs_r=np.abs(r))
            assert wr_abs is not None
            maps[name] = (wr, wr_abs, float(np.linalg.norm(w)))
        prep.wr.append(maps)
    return prep


@dataclass
class LlmAnswer:
    """The worker's answer (module docstring)."""

    main_root: bytes
    rows: np.ndarray  # (n_layers, len(positions), main_width) float32, the opened main rows
    proofs: list[list[list[bytes]]]  # [layer][position index] → proof
    kv: np.ndarray  # (n_layers, T, 2·d_kv)
    final: np.ndarray  # (T, d_model)
    tokens: tuple[int, ...]


def answer_challenge(trace: LlmTrace, ch: LlmChallenge, tree: object) -> LlmAnswer:
    """The worker's answer from its trace and main tree (:meth:`LlmTrace.main_tree`)."""
    from oracle.compute.merkle import MerkleTree

    assert isinstance(tree, MerkleTree)
    t = trace.positions
    rows = np.ascontiguousarray(trace.main[:, ch.positions])
    proofs = [
        [tree.proof(layer * t + int(p)) for p in ch.positions]
        for layer in range(trace.main.shape[0])
    ]
    return LlmAnswer(tree.root, rows, proofs, trace.kv, trace.final, trace.tokens)


@dataclass
class LlmCheck:
    """A verdict's substance: ok, the reason if not, and what was measured."""

    ok: bool
    reason: str
    worst_freivalds_ratio: float = 0.0  # max |residual| / (u·‖x̂‖·‖W‖_F) over every row
    details: dict[str, object] = field(default_factory=dict)


@dataclass
class ModelChecks:
    """Seed-independent data the checks reuse for every job on one model: |W| of the four
    attention maps (float32, for tolerances), ‖W‖_F of the FFN maps, the output head's
    largest row norm. Built once per loaded model (:func:`model_checks`)."""

    abs_w: list[dict[str, np.ndarray]]
    head_row_norm: float


def model_checks(weights: LlamaWeights) -> ModelChecks:
    """:class:`ModelChecks` of ``weights`` (one pass over the attention weights)."""
    abs_w = [{name: np.abs(getattr(lw, name)).T.copy() for name in _ATTN} for lw in weights.layers]
    head = float(np.sqrt((weights.output.astype(np.float64) ** 2).sum(axis=1).max()))
    return ModelChecks(abs_w, head)


def _rmsnorm64(x: np.ndarray, g: np.ndarray, eps: float) -> np.ndarray:
    x64 = x.astype(np.float64)
    return x64 / np.sqrt(np.mean(x64 * x64, axis=-1, keepdims=True) + eps) * g


def verify_answer(
    weights: LlamaWeights,
    prompt: tuple[int, ...],
    answer: LlmAnswer,
    committed_root: bytes,
    ch: LlmChallenge,
    prep: FreivaldsPrep,
    model: ModelChecks | None = None,
) -> LlmCheck:
    """Run every check of the module docstring; the first failure is the reason."""
    cfg = weights.config
    model = model or model_checks(weights)
    d, ff, d_kv = cfg.d_model, cfg.d_ff, cfg.d_kv
    layers = cfg.n_layers
    t_all = answer.final.shape[0]
    pos = ch.positions
    n = len(pos)
    if answer.kv.shape != (layers, t_all, 2 * d_kv) or answer.rows.shape != (
        layers,
        n,
        main_width(cfg),
    ):
        return LlmCheck(False, "answer has the wrong shape")
    if t_all != len(prompt) + len(answer.tokens) - 1:
        return LlmCheck(False, "trace length does not match prompt and tokens")
    kv_flat = np.ascontiguousarray(answer.kv).reshape(layers * t_all, -1)
    kv_root = merkle_root(kv_flat.data.cast("B"), layers * t_all)
    final_root = merkle_root(np.ascontiguousarray(answer.final).data.cast("B"), t_all)
    if trace_root(answer.main_root, kv_root, final_root) != committed_root:
        return LlmCheck(False, "roots do not open the committed trace root")
    indices = [layer * t_all + int(p) for layer in range(layers) for p in pos]
    opened = [answer.rows[layer, i].tobytes() for layer in range(layers) for i in range(n)]
    flat_proofs = [pr for per_layer in answer.proofs for pr in per_layer]
    _, proofs_ok = verify_openings(answer.main_root, indices, opened, flat_proofs, layers * t_all)
    if not all(proofs_ok):
        return LlmCheck(False, "an opened main row's proof does not lead to the main root")
    tokens = np.array(prompt + answer.tokens, dtype=np.int64)
    worst = 0.0
    x0 = answer.rows[0, :, :d]
    if not (x0 == weights.token_embd[tokens[pos]].astype(np.float32)).all():
        return LlmCheck(False, "block 0's input is not the embedding of the position's token")
    hd, nh, nkv = cfg.head_dim, cfg.n_heads, cfg.n_kv_heads
    # the worker's fp32 RMSNorm and product and ours (fp32 products, float64 norms)
    lin = (4 * d + 32) * U32
    for li, lw in enumerate(weights.layers):
        rows = answer.rows[li]
        aw = model.abs_w[li]
        x_in = rows[:, :d]
        h_mid = rows[:, d : 2 * d]
        gate = rows[:, 2 * d : 2 * d + ff]
        up = rows[:, 2 * d + ff :]
        x_next = answer.rows[li + 1, :, :d] if li + 1 < layers else answer.final[pos]
        # 3: q, k, v from the normed input
        a = _rmsnorm64(x_in, lw.attn_norm, cfg.rms_eps).astype(np.float32)
        a_abs = np.abs(a)
        k_hat = a @ lw.attn_k.T
        v_hat = a @ lw.attn_v.T
        q_hat = a @ lw.attn_q.T
        k_tol = lin * (a_abs @ aw["attn_k"])
        v_tol = lin * (a_abs @ aw["attn_v"])
        q_tol = lin * (a_abs @ aw["attn_q"])
        kv_rows = answer.kv[li, pos]
        k_rot_hat = rope_reference(k_hat, pos, hd, cfg.rope_base)
        k_tol_rot = _pair_sum(k_tol, hd) + 8 * U32 * np.abs(k_rot_hat)
        if not (np.abs(kv_rows[:, :d_kv] - k_rot_hat) <= k_tol_rot).all():
            return LlmCheck(False, f"block {li}: committed keys are not RoPE(norm(x)·Wk)")
        if not (np.abs(kv_rows[:, d_kv:] - v_hat) <= v_tol).all():
            return LlmCheck(False, f"block {li}: committed values are not norm(x)·Wv")
        # 4: attention at each opened position over every committed K/V row up to it
        q_rot = rope_reference(q_hat, pos, hd, cfg.rope_base).astype(np.float32)
        q_rot_tol = _pair_sum(q_tol, hd) + 8 * U32 * np.abs(q_rot)
        keys = answer.kv[li, :, :d_kv]
        values = answer.kv[li, :, d_kv:]
        att, att_tol = _attention32(q_rot, q_rot_tol, keys, values, pos, nh, nkv)
        if att is None:
            return LlmCheck(False, f"block {li}: attention scores out of the checkable range")
        o_hat = att @ lw.attn_output.T
        o_tol = (att_tol + lin * np.abs(att)) @ aw["attn_output"]
        o_tol += 2 * U32 * (np.abs(h_mid) + np.abs(x_in))
        o_got = h_mid.astype(np.float64) - x_in
        if not (np.abs(o_got - o_hat) <= o_tol).all():
            return LlmCheck(False, f"block {li}: h_mid − x_in is not attention·Wo")
        # 5: the FFN by Freivalds
        f = _rmsnorm64(h_mid, lw.ffn_norm, cfg.rms_eps)
        f_err = (d + 8) * U32 * np.abs(f)
        g64 = gate.astype(np.float64)
        with np.errstate(over="ignore"):
            s_hat = g64 / (1.0 + np.exp(-g64)) * up
        s_err = 10 * U32 * np.abs(s_hat) + np.abs(g64 * up) * 2.0**-126
        down = x_next.astype(np.float64) - h_mid
        down_err = U32 * (np.abs(x_next) + np.abs(h_mid))
        for name, x_hat, x_err, y, y_err in (
            ("ffn_gate", f, f_err, g64, None),
            ("ffn_up", f, f_err, up.astype(np.float64), None),
            ("ffn_down", s_hat, s_err, down, down_err),
        ):
            wr, wr_abs, w_norm = prep.wr[li][name]
            r = ch.r[name]
            resid = np.abs(y @ r - x_hat @ wr)
            scale = U32 * np.linalg.norm(x_hat, axis=1, keepdims=True) * w_norm
            known = x_err @ wr_abs
            if y_err is not None:
                known = known + y_err @ np.abs(r)
            with np.errstate(invalid="ignore", divide="ignore"):
                ratio = resid / scale
            worst = max(worst, float(np.nanmax(ratio)) if ratio.size else 0.0)
            if not (resid <= FREIVALDS_C * scale + known).all():
                return LlmCheck(False, f"block {li}: {name} fails Freivalds' check", worst)
    # 6: the tokens, from the final rows of the positions that produced them
    first = len(prompt) - 1
    hn = _rmsnorm64(answer.final[first:], weights.output_norm, cfg.rms_eps).astype(np.float32)
    logits = hn @ weights.output.T
    # |logit_w − logit| ≤ lin·Σ|hn||w_j| ≤ lin·‖hn‖₂·max_j‖w_j‖₂, for the worker and for us
    logit_tol = 2 * lin * np.linalg.norm(hn.astype(np.float64), axis=1) * model.head_row_norm
    chosen = logits[np.arange(len(answer.tokens)), list(answer.tokens)]
    if not (chosen >= logits.max(axis=1) - logit_tol).all():
        return LlmCheck(False, "a generated token is not the argmax of its logits", worst)
    return LlmCheck(True, "every opened position checks", worst, {"opened": int(n)})


def _pair_sum(tol: np.ndarray, hd: int) -> np.ndarray:
    """A rotation mixes each pair: the tolerance of both entries is the pair's sum."""
    t = tol.shape[0]
    pairs = tol.reshape(t, -1, hd // 2, 2).sum(axis=-1)
    return np.repeat(pairs, 2, axis=-1).reshape(tol.shape)


def _attention32(
    q: np.ndarray,
    q_tol: np.ndarray,
    keys: np.ndarray,
    values: np.ndarray,
    pos: np.ndarray,
    n_heads: int,
    n_kv: int,
) -> tuple[np.ndarray | None, np.ndarray]:
    """Causal GQA at positions ``pos`` (float32 products, every head in one batched product)
    and a per-entry bound on how far an honest fp32 worker's output may be from it: the
    worker's q within ``q_tol``, its rounding and ours (:mod:`oracle.compute.llm.checks`'
    attention bound, taken twice)."""
    t_all = keys.shape[0]
    n = q.shape[0]
    hd = q.shape[1] // n_heads
    group = n_heads // n_kv
    scale = np.float32(1.0 / math.sqrt(hd))
    # (n_kv, group·n, hd): query head h = kv·group + i
    qg = q.reshape(n, n_kv, group, hd).transpose(1, 2, 0, 3).reshape(n_kv, group * n, hd)
    qt = q_tol.reshape(n, n_kv, group, hd).transpose(1, 2, 0, 3).reshape(n_kv, group * n, hd)
    kh = keys.reshape(t_all, n_kv, hd).transpose(1, 0, 2)  # (n_kv, T, hd)
    vh = values.reshape(t_all, n_kv, hd).transpose(1, 0, 2)
    k_abs, v_abs = np.abs(kh), np.abs(vh)
    masked = np.tile(np.arange(t_all)[None, :] > pos[:, None], (group, 1))[None]  # (1, g·n, T)
    s = np.matmul(qg, kh.transpose(0, 2, 1)) * scale
    s_abs = np.matmul(np.abs(qg), k_abs.transpose(0, 2, 1)) * scale
    e = np.matmul(qt, k_abs.transpose(0, 2, 1)) * scale
    g_hd = hd * U32 / (1 - hd * U32)
    e = np.where(masked, 0.0, 2 * g_hd * s_abs + 2 * U32 * np.abs(s) + e)
    big_e = e.max(axis=2)  # (n_kv, g·n)
    if (2 * big_e > 0.25).any():
        return None, q
    s = np.where(masked, -np.inf, s)
    p = np.exp(s - s.max(axis=2, keepdims=True))
    p /= p.sum(axis=2, keepdims=True)
    out = np.matmul(p, vh)
    weight = np.matmul(p, v_abs)
    attended = np.tile(pos + 1, group)[None, :]
    g_n = attended * U32 / (1 - attended * U32)
    rel = ((2 * big_e + 2 * (attended + 6) * U32) * (1 + 2 * big_e) + 2 * g_n) * (1 + g_n)
    tol = rel[:, :, None] * weight + 2.0**-126

    def back(x: np.ndarray) -> np.ndarray:
        return x.reshape(n_kv, group, n, hd).transpose(2, 0, 1, 3).reshape(n, n_heads * hd)

    return back(out), back(tol)
