"""``mlp``: inference of a dense fp32 network, verified layer by layer.

Network (L = len(dims) − 1 layers): H_0 = x (batch × d_0);
Z_l = H_{l−1}·W_l + b_l (W_l: d_{l−1} × d_l, b_l: d_l); H_l = act(Z_l) for l < L; the output
is Z_L (no activation on the last layer). ``act`` is ReLU (max(z, 0)) or GELU in its tanh form
g(z) = z/2 · (1 + tanh(√(2/π) · (z + 0.044715 z³))), evaluated in fp32 by the worker.

Inputs: seeded — tensor 0 = x (uniform [-1, 1)), tensor 2l = W_l scaled by
2^-⌊log2(d_{l−1})/2⌋, tensor 2l+1 = b_l scaled by 2^-4 (scaling by powers of two is exact);
or blobs — ``x`` (batch × d_0 float32, row-major) and ``weights`` (per layer, d_l rows of
[column j of W_l, b_l[j]], float32 little-endian: :mod:`oracle.protocol.spec`), each checked
against its row roots.

The result (:mod:`oracle.protocol.results`) holds every Z_l and H_l. Verification (``full`` only):

* each layer's product by Freivalds on the *returned* activations: Z_l·r against
  H_{l−1}·(W_l·r) + (b_l·r), within the fp32 bound of :mod:`oracle.compute.freivalds` with
  k = d_{l−1} + 1 (the bias is one more term) and t = |H_{l−1}|(|W_l||r|) + |b_l|·|r|;
  W_l·r and |W_l||r| are seed-only work;
* each nonlinearity elementwise on the returned values: ReLU exactly (H = max(Z, 0));
  GELU within |h − g(z)| ≤ 2^-17·(|z| + 2^-10) with g evaluated in float64 (the fp32
  evaluation errs by a few units of 2^-24 relative to |z|; the stated tolerance leaves a
  ~10× margin and still refuses any wrong activation above it);
* every value must be finite.

Because H_{l−1} is checked elementwise against Z_{l−1} and Z_{l−1} by Freivalds against
H_{l−2}, a wrong value anywhere is caught by the first layer where it appears.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from oracle.compute.backend import Backend
from oracle.compute.freivalds import float64_product, fp32_abs_slack, fp32_tau_coefficient
from oracle.compute.kinds.base import BlobSource, Prepared, load_blob, log2_ratio, seed_hex
from oracle.compute.merkle import MerkleTree
from oracle.compute.rng import DOMAIN_FREIVALDS, challenge_generator, generate_tensor, seed_to_int
from oracle.exceptions import SpecError
from oracle.protocol.results import SampledAnswer
from oracle.protocol.spec import MlpSpec, Spec
from oracle.protocol.verdict import Verdict, VerdictCode, make_verdict

__all__ = ["GELU_ABS_TOL", "GELU_REL_TOL", "MlpInputs", "MlpKind", "gelu"]

GELU_REL_TOL = 2.0**-17
GELU_ABS_TOL = 2.0**-27
_C = math.sqrt(2.0 / math.pi)


@dataclass(frozen=True)
class MlpInputs:
    """The input batch and the layers' (W_l, b_l)."""

    x: np.ndarray
    layers: tuple[tuple[np.ndarray, np.ndarray], ...]


@dataclass
class _State:
    inputs: MlpInputs
    r: list[np.ndarray]  # per layer: d_l × rounds float32
    v: list[tuple[np.ndarray, np.ndarray]]  # per layer: (W·r, |W||r|) float64
    beta: list[tuple[np.ndarray, np.ndarray]]  # per layer: (b·r, |b|·|r|) float64


def gelu(z: np.ndarray) -> np.ndarray:
    """GELU, tanh form, evaluated in the dtype of ``z``."""
    c = z.dtype.type(_C)
    return z.dtype.type(0.5) * z * (1 + np.tanh(c * (z + z.dtype.type(0.044715) * z * z * z)))


def _p(spec: Spec) -> MlpSpec:
    params = spec.params
    assert isinstance(params, MlpSpec)
    return params


def _offsets(dims: tuple[int, ...]) -> list[tuple[int, int, int]]:
    """(layer, start of Z_l, start of H_l or -1) column offsets in the result."""
    out, pos, last = [], 0, len(dims) - 1
    for layer in range(1, last + 1):
        d = dims[layer]
        if layer < last:
            out.append((layer, pos, pos + d))
            pos += 2 * d
        else:
            out.append((layer, pos, -1))
    return out


class MlpKind:
    """The ``mlp`` job kind."""

    name = "mlp"

    def load_inputs(self, spec: Spec, store: BlobSource | None) -> MlpInputs:
        """Generate the seeded network and batch, or load them from blobs."""
        p = _p(spec)
        dims = p.dims
        if p.seed is not None:
            x = generate_tensor(p.seed, 0, (p.batch, dims[0]), "fp32")
            layers = []
            for layer in range(1, len(dims)):
                scale = np.float32(2.0 ** -(int(math.log2(dims[layer - 1])) // 2))
                w = generate_tensor(p.seed, 2 * layer, (dims[layer - 1], dims[layer]), "fp32")
                b = generate_tensor(p.seed, 2 * layer + 1, (dims[layer],), "fp32")
                layers.append((w * scale, b * np.float32(2.0**-4)))
            return MlpInputs(x, tuple(layers))
        (x,) = load_blob(store, p.x, [(p.batch, dims[0])], "fp32", "spec.inputs.x")
        sections = [(dims[i], dims[i - 1] + 1) for i in range(1, len(dims))]
        parts = load_blob(store, p.weights, sections, "fp32", "spec.inputs.weights")
        # each row: column j of W_l, then b_l[j]
        return MlpInputs(
            x, tuple((np.ascontiguousarray(rows[:, :-1].T), rows[:, -1].copy()) for rows in parts)
        )

    def compute(self, spec: Spec, inputs: MlpInputs, backend: Backend) -> np.ndarray:
        """Forward pass; returns [Z_1 | H_1 | … | Z_L] per sample (fp32)."""
        p = _p(spec)
        parts: list[np.ndarray] = []
        h = inputs.x
        for layer, (w, b) in enumerate(inputs.layers, start=1):
            z = backend.matmul_fp32(h, w)
            z += b
            parts.append(z)
            if layer < len(inputs.layers):
                h = np.maximum(z, np.float32(0)) if p.activation == "relu" else gelu(z)
                parts.append(h)
        return np.ascontiguousarray(np.concatenate(parts, axis=1), dtype=np.float32)

    def prepare(self, spec: Spec, seed: bytes | int, inputs: MlpInputs) -> Prepared:
        """Per layer: r_l, W_l·r_l, |W_l||r_l|, b_l·r_l, |b_l|·|r_l|."""
        p = _p(spec)
        gen = challenge_generator(seed, spec.hash, DOMAIN_FREIVALDS)
        rs, vs, betas = [], [], []
        for layer, (w, b) in enumerate(inputs.layers, start=1):
            d = p.dims[layer]
            frac = gen.integers(0, 1 << 23, size=(d, p.rounds), dtype=np.int64)
            sign = np.where(gen.integers(0, 2, size=(d, p.rounds)) == 1, -1.0, 1.0)
            r = (sign * (1.0 + frac * 2.0**-23)).astype(np.float32)
            r64 = r.astype(np.float64)
            v, v_abs = float64_product(w, r64, abs_r=np.abs(r64))
            assert v_abs is not None
            b64 = b.astype(np.float64)
            rs.append(r)
            vs.append((v, v_abs))
            betas.append((b64 @ r64, np.abs(b64) @ np.abs(r64)))
        return Prepared(spec=spec, seed=seed_to_int(seed), state=_State(inputs, rs, vs, betas))

    def check_full(self, prepared: Prepared, result: np.ndarray) -> Verdict:
        """Freivalds per layer on the returned activations, nonlinearities elementwise."""
        p = _p(prepared.spec)
        st: _State = prepared.state
        base: dict[str, Any] = {
            "kind": "mlp",
            "mode": "full",
            "spec_hash": "0x" + prepared.spec.hash.hex(),
            "seed": seed_hex(prepared.seed),
            "rounds": p.rounds,
            "activation": p.activation,
        }
        residuals: list[int | str] = []

        def invalid(reason: str, **extra: Any) -> Verdict:
            return make_verdict(
                VerdictCode.INVALID, reason, {**base, "residual_log2": residuals, **extra}
            )

        if not np.isfinite(result).all():
            return invalid("result contains NaN or Inf")
        h = st.inputs.x
        for layer, z_at, h_at in _offsets(p.dims):
            d_in, d = p.dims[layer - 1], p.dims[layer]
            z = result[:, z_at : z_at + d]
            v, v_abs = st.v[layer - 1]
            beta, beta_abs = st.beta[layer - 1]
            zhat, t = float64_product(h, v, abs_r=v_abs)
            assert t is not None
            tau = fp32_tau_coefficient(d_in + 1, d) * (t + beta_abs) + fp32_abs_slack(d_in + 1, d)
            diff = np.abs(np.matmul(z, st.r[layer - 1]).astype(np.float64) - (zhat + beta))
            residuals.append(log2_ratio(diff, tau))
            bad = np.flatnonzero(~(diff <= tau).all(axis=1))
            if bad.size:
                return invalid(
                    f"layer {layer}: Freivalds check failed on {bad.size} row(s)",
                    layer=layer,
                    bad_rows=[int(i) for i in bad[:16]],
                )
            if h_at < 0:
                break
            h = result[:, h_at : h_at + d]
            if p.activation == "relu":
                ok = h == np.maximum(z, np.float32(0))
            else:
                z64 = z.astype(np.float64)
                ok = np.abs(h - gelu(z64)) <= GELU_REL_TOL * np.abs(z64) + GELU_ABS_TOL
            if not ok.all():
                rows = np.flatnonzero(~ok.all(axis=1))
                return invalid(
                    f"layer {layer}: {p.activation} mismatch on {rows.size} row(s)",
                    layer=layer,
                    bad_rows=[int(i) for i in rows[:16]],
                )
        return make_verdict(
            VerdictCode.VALID,
            "every layer's product and activation checked",
            {**base, "residual_log2": residuals},
        )

    def check_sampled(self, prepared: Prepared, answer: SampledAnswer, root: bytes) -> Verdict:
        """Not supported: mlp specs only allow ``full`` mode."""
        raise SpecError("spec.verify.mode: mlp supports full mode only")

    def answer(
        self,
        spec: Spec,
        result: np.ndarray,
        seed: bytes | int,
        tree: MerkleTree,
        store: BlobSource | None = None,
    ) -> SampledAnswer:
        """Not supported: mlp specs only allow ``full`` mode."""
        raise SpecError("spec.verify.mode: mlp supports full mode only")
