"""Checking a committed LLM trace (:mod:`oracle.compute.llm.trace`) from a few opened positions.

**Challenge** (from the seed, after the commitment): every position that produced a token
(P − 1 … T − 1) and ``SAMPLED_PROMPT_POSITIONS`` prompt positions drawn without replacement,
opened in every block; and for each of ffn_gate, ffn_up and ffn_down a Freivalds matrix R of
``ROUNDS`` columns of ±[1, 2) entries (shared by the blocks).

**Answer** (the worker's, :mod:`oracle.compute.llm.answer` encodes it): the opened main rows
with their Merkle proofs, every K/V row and every final row (the oracle hashes both tables
itself). The three roots and the tokens are the committed result's
(:func:`oracle.protocol.results.decode_llm_result`).

**Checks**, all positions of :class:`Opened` at once per block, in float64 from the committed
values (the tolerances are :mod:`oracle.compute.llm.checks`' and the ones stated here):

1. the K/V and final rows hash to the result's K/V and final roots; each opened row's proof
   leads to the result's main root;
2. block 0's x_in is the embedding row of the position's token, exactly;
3. q, k, v recomputed (float32 products) from RMSNorm(x_in): the committed K/V row equals
   RoPE(k̂) and v̂ within ``LINEAR_C``·u·√k·‖a_i‖₂·‖w_j‖₂ per entry — the scale of an honest
   fp32 dot product's rounding (a random walk over its k terms), measured rather than proven;
4. attention at the position recomputed from q̂ and every committed K/V row up to it, then
   attn_output: h_mid − x_in against att̂·Woᵀ, per entry within the same scale plus
   u·|h_mid| (the residual add's one rounding, exact);
5. ffn_gate and ffn_up by Freivalds against RMSNorm(h_mid), ffn_down against
   silu(gate)·up with x_next − h_mid (x_next the next block's x_in, or the final row): per row
   |y·r − x̂·(Wᵀr)| ≤ ``FREIVALDS_C``·u·‖x̂‖₂·‖W‖_F (plus, for ffn_down, the residual add's
   rounding u·|x_next| carried through |r|: the residual stream has outlier channels in the
   hundreds, whose rounding dwarfs the product's);
6. at each position that produced a token: the logits recomputed (float32 GEMM) from the final
   row; the token must be within 2·``LINEAR_C``·u·√d·‖hn‖·max_j‖w_j‖ of the row's maximum (a
   near-tie accepts either).

**Measured (SmolLM2-135M; tests/oracle/test_llm_verify.py).** Honest traces of two prompts
and two seeds each: the largest ratio of a recomputed map 0.3 (of ``LINEAR_C`` = 16), of a
Freivalds row 1.4 (of ``FREIVALDS_C`` = 16), 0 false positives over more than 1,000 opened rows
per map. Refused: a skipped block; 1% noise on every weight (another quantization); attn_q of
every block scaled by 1% (q is not committed: it shows through attention), ffn_up or attn_v
by 0.1%; attention truncated to 8 keys; a token other than the argmax; any single entry off by
1% of its row's RMS at an opened position (1,000 trials on a tiny model). The textbook fp32
bounds (γ_k·|X||W|) were tried first: thousands of times looser than honest errors, they let
attn_q scaled by 5% through.

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
from oracle.compute.llm.checks import U32, rope_angles
from oracle.compute.llm.gguf_model import LlamaWeights
from oracle.compute.llm.trace import LlmTrace, main_width
from oracle.compute.merkle import FlatProofs, MerkleTree, merkle_root, verify_openings
from oracle.compute.rng import challenge_generator

__all__ = [
    "FREIVALDS_C",
    "LINEAR_C",
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
#: Per-row Freivalds tolerance, in u·‖x̂‖₂·‖W‖_F (module docstring, item 5).
FREIVALDS_C = 16.0
#: Per-entry tolerance of a recomputed linear map, in u·√k·‖x_i‖₂·‖w_j‖₂ (item 3).
LINEAR_C = 16.0
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
    weights: LlamaWeights,
    n_prompt: int,
    n_positions: int,
    seed: bytes | int,
    tag: bytes,
    sampled_prompt: int = SAMPLED_PROMPT_POSITIONS,
) -> LlmChallenge:
    """The challenge of a job with ``n_prompt`` prompt tokens and ``n_positions`` = T
    (``tag``: the spec hash; ``sampled_prompt``: the spec's openings). The Freivalds matrices
    do not depend on T, so they can be drawn (and Wᵀr computed) before the result is known."""
    cfg = weights.config
    gen = challenge_generator(seed, tag, _DOMAIN_LLM)
    candidates = max(0, n_prompt - 1)
    sampled = gen.choice(candidates, size=min(sampled_prompt, candidates), replace=False)
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
    """Seed-only work: for each FFN map, Wᵀr of every block stacked, (layers, n_in, ROUNDS)
    float64, and ‖W‖_F per block, (layers,)."""

    wr: dict[str, np.ndarray] = field(default_factory=dict)
    w_norm: dict[str, np.ndarray] = field(default_factory=dict)


def prepare_freivalds(
    weights: LlamaWeights, ch: LlmChallenge, model: ModelChecks | None = None
) -> FreivaldsPrep:
    """Wᵀr for every FFN map of every block (one pass over those weights; the Frobenius
    norms from ``model`` if given)."""
    prep = FreivaldsPrep()
    for name in _FFN:
        r = ch.r[name]
        prep.wr[name] = np.stack(
            [float64_product(getattr(lw, name).T, r)[0] for lw in weights.layers]
        )
        prep.w_norm[name] = (
            model.ffn_norms[name]
            if model is not None
            else np.array([np.linalg.norm(getattr(lw, name)) for lw in weights.layers])
        )
    return prep


@dataclass
class LlmAnswer:
    """The worker's answer (module docstring)."""

    rows: np.ndarray  # (n_layers, len(positions), main_width) float32, the opened main rows
    #: [layer][position index] → proof, or all of them back to back, block-major (decoded)
    proofs: list[list[list[bytes]]] | FlatProofs
    kv: np.ndarray  # (n_layers, T, 2·d_kv)
    final: np.ndarray  # (T, d_model)


def answer_challenge(trace: LlmTrace, ch: LlmChallenge, tree: MerkleTree) -> LlmAnswer:
    """The worker's answer from its trace and main tree (:meth:`LlmTrace.main_tree`). The
    opened rows are copied out of the trace (whose main rows may live in a reused buffer);
    the K/V and final tables are the trace's own arrays."""
    t = trace.positions
    rows = np.ascontiguousarray(trace.main[:, ch.positions])
    proofs = [
        [tree.proof(layer * t + int(p)) for p in ch.positions]
        for layer in range(trace.main.shape[0])
    ]
    return LlmAnswer(rows, proofs, trace.kv, trace.final)


@dataclass
class LlmCheck:
    """A verdict's substance: ok, the reason if not, and what was measured."""

    ok: bool
    reason: str
    worst_freivalds_ratio: float = 0.0  # max |residual| / (u·‖x̂‖·‖W‖_F) over every row
    details: dict[str, object] = field(default_factory=dict)


@dataclass
class ModelChecks:
    """Seed-independent data the checks reuse for every job on one model, built once per
    loaded model (:func:`model_checks`): every block's maps stacked so that a check runs on
    all blocks in one batched product (0.1 GB for SmolLM2), and the norms the tolerances
    scale with.

    * ``w_qkv_t`` (layers, dim, d_q + 2·d_kv) float32: [Wq; Wk; Wv]ᵀ; ``w_o_t`` (layers, d_q,
      dim): Woᵀ; ``attn_norm``, ``ffn_norm`` (layers, dim): the RMSNorm gains;
    * ``row_norms``: ‖w_j‖ per output entry, (layers, 1, n_out), of attn_k (the larger of each
      RoPE pair: a rotation mixes the two), attn_v and attn_output; ``head_row_norms`` of the
      output head; ``ffn_norms``: ‖W‖_F per block of each FFN map.
    """

    w_qkv_t: np.ndarray
    w_o_t: np.ndarray
    attn_norm: np.ndarray
    ffn_norm: np.ndarray
    row_norms: dict[str, np.ndarray]
    head_row_norms: np.ndarray
    ffn_norms: dict[str, np.ndarray]


def model_checks(weights: LlamaWeights) -> ModelChecks:
    """:class:`ModelChecks` of ``weights``."""
    layers = weights.layers
    hd = weights.config.head_dim

    def norms(name: str) -> np.ndarray:
        return np.stack([np.linalg.norm(getattr(lw, name), axis=1) for lw in layers])[:, None, :]

    return ModelChecks(
        w_qkv_t=np.ascontiguousarray(
            np.stack([np.concatenate([lw.attn_q, lw.attn_k, lw.attn_v]).T for lw in layers])
        ),
        w_o_t=np.ascontiguousarray(np.stack([lw.attn_output.T for lw in layers])),
        attn_norm=np.stack([lw.attn_norm for lw in layers]),
        ffn_norm=np.stack([lw.ffn_norm for lw in layers]),
        row_norms={
            "attn_k": _pair_max(norms("attn_k"), hd),
            "attn_v": norms("attn_v"),
            "attn_output": norms("attn_output"),
        },
        head_row_norms=np.linalg.norm(weights.output, axis=1).astype(np.float32),
        ffn_norms={
            name: np.array([np.linalg.norm(getattr(lw, name)) for lw in layers]) for name in _FFN
        },
    )


def _rmsnorm64(x: np.ndarray, g: np.ndarray, eps: float) -> np.ndarray:
    x64 = x.astype(np.float64)
    return x64 / np.sqrt(np.mean(x64 * x64, axis=-1, keepdims=True) + eps) * g


def _rope64(x: np.ndarray, cos: np.ndarray, sin: np.ndarray, hd: int) -> np.ndarray:
    """:func:`~oracle.compute.llm.checks.rope_reference` on (layers, n, heads·hd) with the
    (n, hd/2) angles of the positions, in float64."""
    shape = x.shape
    xr = x.astype(np.float64).reshape(shape[0], shape[1], -1, hd // 2, 2)
    c = cos.astype(np.float64)[None, :, None, :]
    s = sin.astype(np.float64)[None, :, None, :]
    out = np.empty_like(xr)
    out[..., 0] = xr[..., 0] * c - xr[..., 1] * s
    out[..., 1] = xr[..., 0] * s + xr[..., 1] * c
    return out.reshape(shape)


def verify_answer(
    weights: LlamaWeights,
    prompt: tuple[int, ...],
    tokens: tuple[int, ...],
    roots: tuple[bytes, bytes, bytes],
    answer: LlmAnswer,
    ch: LlmChallenge,
    prep: FreivaldsPrep,
    model: ModelChecks | None = None,
    *,
    measure: bool = False,
) -> LlmCheck:
    """Run every check of the module docstring on the committed ``tokens`` and trace
    ``roots`` (main, K/V, final); the first failure (in block order, then in the order of
    the docstring) is the reason. Each check runs on every block at once (batched products
    over the stacked weights of :class:`ModelChecks`). ``measure``: also state the largest
    ratio of each check to its tolerance's scale (``worst_freivalds_ratio``, ``details``),
    one more pass over every checked array (10% of the time)."""
    cfg = weights.config
    model = model or model_checks(weights)
    d, ff, d_kv, d_q = cfg.d_model, cfg.d_ff, cfg.d_kv, cfg.d_q
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
    if t_all != len(prompt) + len(tokens) - 1:
        return LlmCheck(False, "trace length does not match prompt and tokens")
    if not all(0 <= t < cfg.vocab_size for t in tokens):
        return LlmCheck(False, "a generated token id is outside the vocabulary")
    main_root, kv_root, final_root = roots
    kv_flat = np.ascontiguousarray(answer.kv).reshape(layers * t_all, -1)
    if merkle_root(kv_flat.data.cast("B"), layers * t_all) != kv_root:
        return LlmCheck(False, "the K/V rows do not hash to the committed K/V root")
    if merkle_root(np.ascontiguousarray(answer.final).data.cast("B"), t_all) != final_root:
        return LlmCheck(False, "the final rows do not hash to the committed final root")
    indices = [layer * t_all + int(p) for layer in range(layers) for p in pos]
    opened = np.ascontiguousarray(answer.rows).reshape(layers * n, -1)  # layer-major, as indices
    flat_proofs = (
        answer.proofs
        if isinstance(answer.proofs, FlatProofs)
        else [pr for per_layer in answer.proofs for pr in per_layer]
    )
    _, proofs_ok = verify_openings(main_root, indices, opened, flat_proofs, layers * t_all)
    if not all(proofs_ok):
        return LlmCheck(False, "an opened main row's proof does not lead to the main root")
    ids = np.array(prompt + tokens, dtype=np.int64)
    rows = answer.rows
    if not (rows[0, :, :d] == weights.token_embd[ids[pos]].astype(np.float32)).all():
        return LlmCheck(False, "block 0's input is not the embedding of the position's token")
    hd = cfg.head_dim
    ratios: dict[str, float] = {}
    failed: dict[str, np.ndarray] = {}  # check → (layers,) bool: that block fails it

    def entries_ok(
        label: str,
        got: np.ndarray,
        ref: np.ndarray,
        x: np.ndarray,
        norms: np.ndarray,
        exact: np.ndarray | float = 0.0,
    ) -> None:
        """|got − ref| ≤ LINEAR_C·u·√k·‖x_i‖·‖w_j‖ + ``exact`` per entry (module docstring;
        ``exact``: a rounding bounded exactly, e.g. a residual add's), per block."""
        x_norm = np.linalg.norm(x.astype(np.float64), axis=-1, keepdims=True)
        scale = U32 * math.sqrt(x.shape[-1]) * x_norm * norms
        excess = np.abs(got - ref) - exact
        if measure:
            with np.errstate(invalid="ignore", divide="ignore"):
                ratio = excess / scale
            ratios[label] = float(np.nanmax(ratio, initial=0.0))
        failed[label] = ~(excess <= LINEAR_C * scale).all(axis=(1, 2))

    with np.errstate(over="ignore", invalid="ignore"):
        x_in = rows[:, :, :d]
        h_mid = rows[:, :, d : 2 * d]
        x_next = np.concatenate([rows[1:, :, :d], answer.final[pos][None]])
        # 3: q, k, v from the normed input, every block in one batched product
        a = _rmsnorm64(x_in, model.attn_norm[:, None, :], cfg.rms_eps).astype(np.float32)
        qkv = np.matmul(a, model.w_qkv_t)
        cos, sin = rope_angles(pos, hd, cfg.rope_base)
        kv_rows = answer.kv[:, pos]
        k_rot_hat = _rope64(qkv[..., d_q : d_q + d_kv], cos, sin, hd)
        entries_ok("attn_k", kv_rows[..., :d_kv], k_rot_hat, a, model.row_norms["attn_k"])
        v_hat = qkv[..., d_q + d_kv :]
        entries_ok("attn_v", kv_rows[..., d_kv:], v_hat, a, model.row_norms["attn_v"])
        # 4: attention at each opened position over every committed K/V row up to it
        q_rot = _rope64(qkv[..., :d_q], cos, sin, hd).astype(np.float32)
        att, failed["range"] = _attention32(q_rot, answer.kv, pos, cfg.n_heads, cfg.n_kv_heads)
        o_hat = np.matmul(att, model.w_o_t)
        o_got = h_mid.astype(np.float64) - x_in
        add = U32 * np.abs(h_mid)  # h_mid = fl(x_in + o): one rounding
        entries_ok("attn_output", o_got, o_hat, att, model.row_norms["attn_output"], add)
        # 5: the FFN by Freivalds
        f = _rmsnorm64(h_mid, model.ffn_norm[:, None, :], cfg.rms_eps)
        g64 = rows[:, :, 2 * d : 2 * d + ff].astype(np.float64)
        up = rows[:, :, 2 * d + ff :].astype(np.float64)
        s_hat = np.negative(g64)  # silu(gate)·up, in place: no temporaries of this size
        np.exp(s_hat, out=s_hat)
        s_hat += 1.0
        np.divide(g64, s_hat, out=s_hat)
        s_hat *= up
        down = x_next.astype(np.float64) - h_mid
        # x_next = fl(h_mid + down): one rounding per entry, carried through |r|
        down_add = (U32 * np.abs(x_next.astype(np.float64))) @ np.abs(ch.r["ffn_down"])
        worst = 0.0
        for name, x_hat, y, exact in (
            ("ffn_gate", f, g64, 0.0),
            ("ffn_up", f, up, 0.0),
            ("ffn_down", s_hat, down, down_add),
        ):
            resid = np.abs(y @ ch.r[name] - np.matmul(x_hat, prep.wr[name])) - exact
            x_norm = np.linalg.norm(x_hat, axis=-1, keepdims=True)
            scale = U32 * x_norm * prep.w_norm[name][:, None, None]
            if measure:
                with np.errstate(divide="ignore"):
                    ratio = resid / scale
                worst = max(worst, float(np.nanmax(ratio, initial=0.0)))
            failed[name] = ~(resid <= FREIVALDS_C * scale).all(axis=(1, 2))
    reasons = (
        ("attn_k", "committed keys are not RoPE(norm(x)·Wk)"),
        ("attn_v", "committed values are not norm(x)·Wv"),
        ("range", "attention scores out of the checkable range"),
        ("attn_output", "h_mid − x_in is not attention·Wo"),
        ("ffn_gate", "ffn_gate fails Freivalds' check"),
        ("ffn_up", "ffn_up fails Freivalds' check"),
        ("ffn_down", "ffn_down fails Freivalds' check"),
    )
    bad = np.stack([failed[key] for key, _ in reasons], axis=1)  # (layers, checks)
    if bad.any():
        li, ci = (int(i) for i in np.argwhere(bad)[0])
        return LlmCheck(False, f"block {li}: {reasons[ci][1]}", worst)
    # 6: the tokens, from the final rows of the positions that produced them
    first = len(prompt) - 1
    hn = _rmsnorm64(answer.final[first:], weights.output_norm, cfg.rms_eps).astype(np.float32)
    logits = hn @ weights.output.T
    # either side's logits within LINEAR_C·u·√d·‖hn‖·‖w_j‖ of the exact ones
    scale_h = U32 * math.sqrt(d) * np.linalg.norm(hn.astype(np.float64), axis=1)
    logit_tol = 2 * LINEAR_C * scale_h * float(model.head_row_norms.max())
    chosen = logits[np.arange(len(tokens)), list(tokens)]
    details: dict[str, object] = {"opened": int(n)}
    if measure:
        details["linear_ratios"] = ratios
    if not (chosen >= logits.max(axis=1) - logit_tol).all():
        return LlmCheck(False, "a generated token is not the argmax of its logits", worst, details)
    return LlmCheck(True, "every opened position checks", worst, details)


def _pair_max(norms: np.ndarray, hd: int) -> np.ndarray:
    """Per entry, the larger row norm of its RoPE pair (a rotation mixes the two)."""
    pairs = norms.reshape(*norms.shape[:-1], -1, 2).max(axis=-1)
    return np.repeat(pairs, 2, axis=-1).reshape(norms.shape)


#: Attention is computed for this many score entries at most at once (blocks in chunks): it
#: bounds the scores' memory (all 30 blocks of a 512 + 256 job at once would take 225 MB) at
#: no cost in time (512 + 32: 35 ms with chunks of 2^17 to 2^20 entries, 41 ms all at once).
_SCORE_CHUNK = 1 << 20


def _attention32(
    q: np.ndarray, kv: np.ndarray, pos: np.ndarray, n_heads: int, n_kv: int
) -> tuple[np.ndarray, np.ndarray]:
    """Causal GQA at positions ``pos`` of every block (float32 products, every head of a
    chunk of blocks in one batched product): q (layers, n, d_q), kv (layers, T, 2·d_kv) →
    (output (layers, n, d_q), (layers,) bool: a score beyond the range the checks are
    calibrated for, |s| > 2^20)."""
    layers, n, d_q = q.shape
    t_all = kv.shape[1]
    hd = d_q // n_heads
    d_kv = n_kv * hd
    group = n_heads // n_kv
    scale = np.float32(1.0 / math.sqrt(hd))
    masked = np.tile(np.arange(t_all)[None, :] > pos[:, None], (group, 1))[None]  # (1, g·n, T)
    out = np.empty((layers, n, d_q), dtype=np.float32)
    out_of_range = np.zeros(layers, dtype=bool)
    step = max(1, _SCORE_CHUNK // (n_kv * group * n * t_all))
    for lo in range(0, layers, step):
        hi = min(layers, lo + step)
        c = hi - lo
        # (c·n_kv, group·n, hd): query head h = kv·group + i
        qg = q[lo:hi].reshape(c, n, n_kv, group, hd).transpose(0, 2, 3, 1, 4)
        qg = qg.reshape(c * n_kv, group * n, hd)
        kh = kv[lo:hi, :, :d_kv].reshape(c, t_all, n_kv, hd).transpose(0, 2, 3, 1)
        vh = kv[lo:hi, :, d_kv:].reshape(c, t_all, n_kv, hd).transpose(0, 2, 1, 3)
        s = np.matmul(qg, kh.reshape(c * n_kv, hd, t_all))
        s *= scale
        flat = s.reshape(c, -1)
        top = np.maximum(flat.max(axis=1), -flat.min(axis=1))
        out_of_range[lo:hi] = ~(top <= 2.0**20)
        np.putmask(s, np.broadcast_to(masked, s.shape), -np.inf)
        s -= s.max(axis=2, keepdims=True)
        np.exp(s, out=s)
        s /= s.sum(axis=2, keepdims=True)
        o = np.matmul(s, vh.reshape(c * n_kv, t_all, hd))  # (c·n_kv, g·n, hd)
        out[lo:hi] = o.reshape(c, n_kv, group, n, hd).transpose(0, 3, 1, 2, 4).reshape(c, n, d_q)
    return out, out_of_range
