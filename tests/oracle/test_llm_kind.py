"""The ``llm`` kind through the generic worker and oracle APIs (oracle.compute.work / verify).

On SmolLM2-135M: a job computed, challenged, answered and checked is VALID with the expected
completion, twice with the same transcript hash; a worker that lost its trace answers the same
bytes by generating again; a tampered answer, a result that is not the committed one, an
answer to another seed, an early stop without EOS, and deliberately wrong implementations
(RoPE off by one in decode steps, no causal mask) are INVALID. The model is fetched once into
the cache directory and loaded from there afterwards; a file whose shape is not the spec's is
refused naming the field. The trace cache keeps traces up to its byte budget and reuses an
evicted trace's buffer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import oracle.compute.kinds.llm as llm_kind
import oracle.compute.llm.forward_pass as fp
from oracle.compute.kinds.llm import TraceCache
from oracle.compute.llm import DEFAULT_MODEL_FILE, GgufTokenizer
from oracle.compute.llm.answer import encode_llm_answer
from oracle.compute.llm.model_cache import MODELS, ModelCache
from oracle.compute.llm.trace import TraceBuffer, traced_generate
from oracle.compute.llm.verify import answer_challenge as llm_answer
from oracle.compute.llm.verify import llm_challenge
from oracle.compute.verify import check_sampled, prepare
from oracle.compute.work import answer_challenge, compute, result_tree
from oracle.exceptions import BlobNotFound, InputError
from oracle.protocol.results import decode_llm_result, encode_llm_result, result_layout
from oracle.protocol.spec import Spec, parse_spec
from oracle.protocol.verdict import VerdictCode
from oracle.store.blobs import LocalBlobStore

MODEL_PATH = Path(__file__).resolve().parents[2] / ".pouw" / "models" / DEFAULT_MODEL_FILE
SEED = b"\x07" * 32


@pytest.fixture(scope="module")
def smol_blob() -> str:
    if not MODEL_PATH.is_file():
        pytest.skip(f"{MODEL_PATH} absent: `make setup` fetches it")
    return MODELS.offer(MODEL_PATH)


def _spec(blob: str, prompt: list[int], new: int, eos: int | None = 2, **model: int) -> Spec:
    shape = {
        "layers": 30,
        "dim": 576,
        "ffn": 1536,
        "heads": 9,
        "kv_heads": 3,
        "head_dim": 64,
        "vocab": 49152,
        "context": 8192,
    }
    shape.update(model)
    return parse_spec(
        {
            "version": 1,
            "kind": "llm",
            "model": {"blob": "0x" + blob, "arch": "llama", **shape},
            "prompt": prompt,
            "max_new_tokens": new,
            "eos": eos,
            "verify": {"mode": "sampled", "openings": 16},
        }
    )


@pytest.fixture(scope="module")
def tok(smol_blob: str) -> GgufTokenizer:
    return GgufTokenizer(MODELS.load(smol_blob, None).model.vocab)


@pytest.fixture(scope="module")
def paris(smol_blob: str, tok: GgufTokenizer) -> tuple[Spec, np.ndarray, bytes]:
    spec = _spec(smol_blob, tok.encode("The capital of France is"), 6)
    result = compute(spec)
    return spec, result, answer_challenge(spec, result, SEED)


def _check(spec: Spec, answer: bytes, root: bytes, seed: bytes = SEED) -> Any:
    return check_sampled(prepare(spec, seed), answer, root)


def test_llm_job__honest__valid_with_the_completion(
    paris: tuple[Spec, np.ndarray, bytes], tok: GgufTokenizer
) -> None:
    spec, result, answer = paris
    _, tokens = decode_llm_result(spec, result.tobytes())
    assert tok.decode(tokens).startswith(" Paris.")
    root = result_tree(spec, result).root
    first = _check(spec, answer, root)
    assert first.verdict == VerdictCode.VALID, first.reason
    assert first.transcript["tokens"] == 6 and first.transcript["opened"] >= 6
    again = _check(spec, answer, root)
    assert again.transcript_hash == first.transcript_hash


def test_llm_job__trace_lost__answer_generated_again_is_the_same(
    paris: tuple[Spec, np.ndarray, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec, result, answer = paris
    monkeypatch.setattr(llm_kind, "TRACES", TraceCache(1 << 30))  # a restarted worker
    assert answer_challenge(spec, result, SEED) == answer


def test_llm_job__tampered_or_foreign_answers__invalid(
    paris: tuple[Spec, np.ndarray, bytes], smol_blob: str
) -> None:
    spec, result, answer = paris
    root = result_tree(spec, result).root
    (rows, _), _ = result_layout(spec)
    result_at = answer.index(result.tobytes())
    body = result_at + len(result.tobytes())
    flipped = bytearray(answer)
    flipped[body + 5000] ^= 0x40  # an opened main row's float
    assert _check(spec, bytes(flipped), root).verdict == VerdictCode.INVALID
    v = _check(spec, answer[:-7], root)
    assert v.verdict == VerdictCode.INVALID and "bytes, expected" in v.reason
    v = _check(spec, b"POUWANS1" + answer[8:], root)
    assert v.verdict == VerdictCode.INVALID and "bad magic" in v.reason
    v = _check(spec, answer, b"\x11" * 32)
    assert v.reason == "result does not match the committed root"
    # a token changed in the result (and the commitment made to match): the trace refutes it
    roots, tokens = decode_llm_result(spec, result.tobytes())
    forged = encode_llm_result(spec, roots, (*tokens[:-1], (tokens[-1] + 1) % 49152))
    forged_answer = answer[:result_at] + forged + answer[body:]
    forged_root = result_tree(spec, np.frombuffer(forged, dtype="<u4").reshape(rows, -1)).root
    v = _check(spec, forged_answer, forged_root)
    assert v.verdict == VerdictCode.INVALID and "argmax" in v.reason, v.reason


def _answer_for(spec: Spec, trace: Any) -> tuple[bytes, bytes]:
    """(answer, committed root) of ``trace`` as a worker would send them for ``spec``."""
    tree = trace.main_tree()
    data = encode_llm_result(spec, trace.roots(tree), trace.tokens)
    p = spec.params
    w = MODELS.load(p.model.blob, None).model.weights  # type: ignore[union-attr]
    ch = llm_challenge(w, len(trace.prompt), trace.positions, SEED, spec.hash, 16)
    (rows, cols), dtype = result_layout(spec)
    root = result_tree(spec, np.frombuffer(data, dtype=dtype).reshape(rows, cols)).root
    return encode_llm_answer(data, ch.positions, llm_answer(trace, ch, tree)), root


def test_llm_job__answer_to_another_seed__invalid(smol_blob: str) -> None:
    """Prompt positions are sampled from the seed (40 tokens: 16 of 39 opened)."""
    spec = _spec(smol_blob, list(range(1000, 1040)), 2)
    result = compute(spec)
    stale = answer_challenge(spec, result, b"\x08" * 32)
    root = result_tree(spec, result).root
    assert _check(spec, stale, root, seed=b"\x08" * 32).verdict == VerdictCode.VALID
    v = _check(spec, stale, root)
    assert v.reason == "answer opens other positions than the challenge"


def test_llm_job__early_stop_without_eos__invalid(smol_blob: str, tok: GgufTokenizer) -> None:
    spec = _spec(smol_blob, tok.encode("The capital of France is"), 6)
    w = MODELS.load(smol_blob, None).model.weights
    short = traced_generate(w, spec.params.prompt, 3, eos_id=None)  # type: ignore[union-attr]
    answer, root = _answer_for(spec, short)
    v = _check(spec, answer, root)
    assert v.reason == "generation stopped early without the end-of-sequence token"


@pytest.mark.parametrize("wrong", ["rope_off_by_one", "no_causal_mask"])
def test_llm_job__wrong_implementation__invalid(
    wrong: str, smol_blob: str, tok: GgufTokenizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _spec(smol_blob, tok.encode("The quick brown fox jumps over the lazy dog because"), 4)
    if wrong == "rope_off_by_one":  # decode steps rotate one position too far
        tables = fp._rope_tables
        monkeypatch.setattr(
            fp, "_rope_tables", lambda p, n, b: tables(p + 1 if p.size == 1 else p, n, b)
        )
    else:
        monkeypatch.setattr(fp, "_causal_bias", lambda start, t, s: None)
    w = MODELS.load(smol_blob, None).model.weights
    trace = traced_generate(w, spec.params.prompt, 4, eos_id=None)  # type: ignore[union-attr]
    monkeypatch.undo()
    answer, root = _answer_for(spec, trace)
    v = _check(spec, answer, root)
    assert v.verdict == VerdictCode.INVALID and v.reason.startswith("block "), v.reason


def test_model_cache__fetched_once_then_from_disk(
    smol_blob: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalBlobStore(tmp_path / "store")
    empty = ModelCache(tmp_path / "cache")
    with pytest.raises(BlobNotFound):
        empty.load(smol_blob, store)
    assert store.put(MODEL_PATH.read_bytes()) == smol_blob
    cache = ModelCache(tmp_path / "cache")
    loaded = cache.load(smol_blob, store)
    assert (tmp_path / "cache" / f"{smol_blob}.gguf").stat().st_size == MODEL_PATH.stat().st_size
    assert cache.load(smol_blob, None) is loaded  # in memory
    fresh = ModelCache(tmp_path / "cache")  # another process: from the cache directory
    assert fresh.load(smol_blob, None).model.config == loaded.model.config
    assert not list((tmp_path / "cache").glob("*.part"))


def test_model_cache__disk_budget__least_recently_used_files_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many distinct model files cannot fill the disk: after a fetch the cache keeps at most
    its budget, removing the files used longest ago, never the one just fetched."""
    import os

    from oracle.protocol.hashing import keccak256

    store = LocalBlobStore(tmp_path / "store")
    blobs = [bytes([i]) * 1000 for i in range(4)]
    names = [store.put(b) for b in blobs]
    cache = ModelCache(tmp_path / "cache")
    monkeypatch.setenv("POUW_MODEL_CACHE_GB", str(2500 / 1e9))  # room for two files
    paths = []
    for i, name in enumerate(names[:2]):
        paths.append(cache.path(name, store))
        os.utime(paths[-1], (1000 + i, 1000 + i))
    assert cache.path(names[0], None) == paths[0]  # used again: now the most recent
    third = cache.path(names[2], store)
    assert sorted(p.name for p in (tmp_path / "cache").glob("*.gguf")) == sorted(
        [paths[0].name, third.name]
    )  # the second, least recently used, went
    assert third.read_bytes() == blobs[2] and keccak256(blobs[2]).hex() == names[2]
    assert cache.trim(keep=third, budget=0) == [paths[0]]  # never the one kept
    monkeypatch.setenv("POUW_MODEL_CACHE_GB", "lots")
    with pytest.raises(InputError, match="POUW_MODEL_CACHE_GB must be a number"):
        cache.path(names[3], store)


def test_model_cache__shape_not_the_specs__refused(smol_blob: str, tok: GgufTokenizer) -> None:
    spec = _spec(smol_blob, tok.encode("Hi"), 2, layers=29)
    with pytest.raises(InputError, match=r"spec.model.layers: the spec says 29, the model file"):
        compute(spec)


def test_trace_cache__byte_budget__evicts_oldest_and_reuses_its_buffer(tmp_path: Path) -> None:
    from gguf import GGMLQuantizationType as QT

    from oracle.compute.llm import load_llama_gguf
    from tests.oracle.test_llm_model import _synthetic_weights, _write_gguf

    _write_gguf(tmp_path / "tiny.gguf", _synthetic_weights(3, False), QT.F32)
    w = load_llama_gguf(tmp_path / "tiny.gguf").weights
    buffers = []
    traces = []
    for i in range(3):
        buf = TraceBuffer()
        t = traced_generate(w, [1 + i, 2, 3], 2, eos_id=None, buffer=buf)
        traces.append(t)
        buffers.append(buf)
    one = traces[0].main.nbytes + traces[0].kv.nbytes + traces[0].final.nbytes
    cache = TraceCache(2 * one)
    for i, t in enumerate(traces):
        cache.put(bytes([i]) * 32, t, t.main_tree(), buffers[i])
    assert len(cache) == 2
    assert cache.answer(b"\x00" * 32, lambda t, tree: 1) is None  # the oldest went
    assert cache.answer(b"\x02" * 32, lambda t, tree: t.tokens) == traces[2].tokens
    assert cache.buffer() is buffers[0]  # its buffer serves the next generation
    assert cache.buffer() is not buffers[0]  # once
