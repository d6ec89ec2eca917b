"""A requester's ``llm`` job: the model file, the prompt as token ids, the spec, and the
completion read back as text.

* :func:`default_model_path` — ``$POUW_MODEL``, else the default model ``make setup`` put under
  ``.pouw/models/`` of this checkout (SmolLM2-135M-Instruct, Q4_1).
* :func:`llm_job` — load and check a GGUF (the loader's refusals: another architecture, an
  unsupported tensor type, a truncated file), tokenize the prompt with the model's own
  tokenizer (optionally through its chat template) or take token ids, check the limits
  (prompt tokens, new tokens, the model's context), and build the spec: the model named by
  the keccak256 of the file (its blob name) with the shape the work is counted from,
  greedy decoding to ``max_new_tokens`` or the model's end-of-sequence token.
* :func:`publish_model` — the model file to every store that does not already hold it.
* :func:`completion_text` — the generated tokens as text, with the tokenizer of the model
  the spec names (fetched by its blob from the job stores into the model cache if needed).

Every refusal is one :class:`~oracle.exceptions.ConfigError` line, raised before anything is
published or escrowed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from oracle.client.jobs import llm_spec
from oracle.compute.llm import DEFAULT_MODEL_FILE, GgufTokenizer, LlamaModel, load_llama_gguf
from oracle.compute.llm.gguf_model import load_llama_vocab
from oracle.compute.llm.model_cache import MODELS, spec_shape
from oracle.exceptions import ConfigError, InputError, SpecError
from oracle.protocol.hashing import keccak256
from oracle.protocol.spec import MAX_NEW_TOKENS, MAX_PROMPT_TOKENS, LlmSpec, Spec, parse_spec
from oracle.store.specs import InputStore, SpecStore

__all__ = [
    "DEFAULT_OPENINGS",
    "LlmJob",
    "completion_text",
    "default_model_path",
    "llm_job",
    "model_in_stores",
    "parse_prompt_ids",
    "publish_model",
]

#: Prompt positions an oracle opens per block when the requester does not say.
DEFAULT_OPENINGS = 16


def default_model_path() -> Path:
    """``$POUW_MODEL`` if set, else ``.pouw/models/SmolLM2-135M-Instruct.Q4_1.gguf`` of the
    checkout this package runs from (``make setup`` puts it there)."""
    env = os.environ.get("POUW_MODEL")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / ".pouw" / "models" / DEFAULT_MODEL_FILE


@dataclass(frozen=True)
class LlmJob:
    """A checked llm job: its spec, the model file it names and the bytes to publish."""

    spec: Spec
    model_path: Path
    model_bytes: bytes
    #: The model's blob name (0x-prefixed keccak256 of the file).
    blob: str
    #: The prompt as the model reads it (decoded from its token ids).
    prompt_text: str


def parse_prompt_ids(text: str) -> list[int]:
    """``"1,504,3458"`` → ``[1, 504, 3458]``; ConfigError naming the bad entry."""
    ids = []
    for i, part in enumerate(text.split(",")):
        part = part.strip()
        if not part.isdigit():
            raise ConfigError(
                f"--prompt-ids: entry {i} ({part!r}) is not a token id "
                "(give comma-separated non-negative integers, e.g. 1,504,3458)"
            )
        ids.append(int(part))
    return ids


def _load(path: Path, hint: str) -> LlamaModel:
    """The model at ``path``; ConfigError with the loader's reason."""
    if not path.is_file():
        raise ConfigError(f"--model {path}: no such file{hint}")
    try:
        return load_llama_gguf(path)
    except InputError as exc:
        raise ConfigError(f"--model: {exc}") from None


def llm_job(
    model_path: str | os.PathLike[str] | None,
    *,
    prompt: str | None,
    prompt_ids: str | None,
    max_new_tokens: int,
    chat: bool = False,
    openings: int | None = None,
) -> LlmJob:
    """The spec of greedy generation on ``model_path`` (default :func:`default_model_path`):
    exactly one of ``prompt`` (text; through the chat template as one user message with
    ``chat``) or ``prompt_ids`` (comma-separated token ids). ConfigError on any bad input."""
    if (prompt is None) == (prompt_ids is None):
        raise ConfigError("give exactly one of --prompt TEXT or --prompt-ids ID,ID,...")
    if chat and prompt is None:
        raise ConfigError("--chat applies to --prompt text only")
    if not 1 <= max_new_tokens <= MAX_NEW_TOKENS:
        raise ConfigError(
            f"--max-new-tokens must be in [1, {MAX_NEW_TOKENS}], got {max_new_tokens}"
        )
    path = Path(model_path) if model_path is not None else default_model_path()
    default = model_path is None and "POUW_MODEL" not in os.environ
    model = _load(path, " (`make setup` fetches the default model)" if default else "")
    cfg = model.config
    try:
        tok = GgufTokenizer(model.vocab)
    except InputError as exc:
        raise ConfigError(f"--model: {exc}") from None
    if prompt is not None:
        if not prompt:
            raise ConfigError("--prompt: empty")
        try:
            ids = (
                tok.encode_chat([{"role": "user", "content": prompt}])
                if chat
                else tok.encode(prompt)
            )
        except InputError as exc:
            raise ConfigError(f"--chat: {exc}") from None
    else:
        assert prompt_ids is not None
        ids = parse_prompt_ids(prompt_ids)
        bad = next((t for t in ids if t >= cfg.vocab_size), None)
        if bad is not None:
            raise ConfigError(
                f"--prompt-ids: token id {bad} is outside the model's vocabulary "
                f"(0..{cfg.vocab_size - 1})"
            )
    if not ids:
        raise ConfigError("--prompt: the prompt has no tokens")
    if len(ids) > MAX_PROMPT_TOKENS:
        raise ConfigError(f"--prompt: {len(ids)} tokens, the limit is {MAX_PROMPT_TOKENS} per job")
    if len(ids) + max_new_tokens > cfg.context_length:
        raise ConfigError(
            f"--prompt: {len(ids)} tokens + --max-new-tokens {max_new_tokens} exceed the "
            f"model's context of {cfg.context_length}"
        )
    data = path.read_bytes()
    blob = "0x" + keccak256(data).hex()
    MODELS.add(path, blob, model)  # a worker or oracle in this process loads it no more
    spec = llm_spec(
        blob=blob,
        shape=spec_shape(cfg),
        prompt=ids,
        max_new_tokens=max_new_tokens,
        eos=model.vocab.eos_id,
        openings=openings or DEFAULT_OPENINGS,
    )
    try:
        parsed = parse_spec(spec)
    except SpecError as exc:
        raise ConfigError(str(exc)) from None
    return LlmJob(parsed, path, data, blob, tok.decode(ids))


def publish_model(job: LlmJob, locations: Sequence[str]) -> list[str]:
    """Put the model file in every store of ``locations`` that lacks it; returns those stores
    (none when every store already holds it). BlobError naming a store that fails."""
    stores = SpecStore(list(locations))
    stores.require_all()
    missing = stores.missing(job.blob)
    if missing:
        SpecStore(missing).put_blob(job.model_bytes)
    return missing


def model_in_stores(spec: Spec, locations: Sequence[str]) -> bool:
    """True iff some store of ``locations`` holds the model file ``spec`` names."""
    p = spec.params
    assert isinstance(p, LlmSpec)
    return len(SpecStore(list(locations)).missing(p.model.blob)) < len(locations)


def completion_text(spec: Spec, tokens: Sequence[int], stores: Sequence[str]) -> tuple[str, str]:
    """(prompt, completion) of an llm job as text, with the tokenizer of the model the spec
    names (from the model cache, else fetched from ``stores`` by its blob and cached). The
    end-of-sequence token, if generated, is left out of the text."""
    p = spec.params
    if not isinstance(p, LlmSpec):
        raise ConfigError("not an llm job")
    path = MODELS.path(p.model.blob, InputStore(list(stores)))
    try:
        _, vocab = load_llama_vocab(path)
        tok = GgufTokenizer(vocab)
    except InputError as exc:
        raise ConfigError(f"model {p.model.blob}: {exc}") from None
    out = list(tokens)
    if out and p.eos is not None and out[-1] == p.eos:
        out.pop()
    return tok.decode(p.prompt), tok.decode(out)
