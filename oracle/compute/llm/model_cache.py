"""Models named by their blob: fetched once, kept on disk, loaded once per process.

An llm spec names its model by the keccak256 of the GGUF file (a content-addressed blob in the
job stores). Workers and oracles get the file through the job's blob source (every copy is
hash-checked as it arrives), keep it under the cache directory as ``<blob>.gguf`` (written
to a temporary name and renamed, so a crash never leaves a partial file under the real
name), and load it with :func:`~oracle.compute.llm.load_llama_gguf`; the loaded float32 model
(0.54 GB for SmolLM2-135M) stays in memory for the next job, up to ``capacity`` models, least
recently used out first.

The cache directory is ``$POUW_MODEL_CACHE`` if set, else ``~/.cache/pouw/models``; it holds at
most ``$POUW_MODEL_CACHE_GB`` (default 20 GB): after each fetch the least recently used files
go (:meth:`ModelCache.trim`). A file in it is trusted: only this module writes there, after
the hash check. A local file the caller already has (the default model under
``.pouw/models/``) can be offered with :meth:`offer`; it is hashed once and used if its name
matches, with no transfer.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from oracle.compute.llm.gguf_model import LlamaConfig, LlamaModel, load_llama_gguf
from oracle.compute.llm.verify import ModelChecks, model_checks
from oracle.exceptions import InputError
from oracle.protocol.hashing import keccak256
from oracle.protocol.spec import MAX_LLM_PARAMETERS, LlmModel

__all__ = [
    "MODELS",
    "LoadedModel",
    "ModelCache",
    "check_shape",
    "default_cache_budget",
    "default_cache_dir",
    "spec_shape",
]

#: The largest model file fetched (bytes): the largest model a spec may name in float32
#: (:data:`~oracle.protocol.spec.MAX_LLM_PARAMETERS` × 4 bytes) and 256 MiB of metadata
#: (vocabulary, merges, chat template).
MAX_MODEL_BYTES = MAX_LLM_PARAMETERS * 4 + (256 << 20)


class _Source(Protocol):
    def get(self, name: str, max_size: int | None = None) -> bytes: ...


def default_cache_budget() -> int:
    """Bytes the cache directory may hold: ``$POUW_MODEL_CACHE_GB`` (GB, default 20)."""
    env = os.environ.get("POUW_MODEL_CACHE_GB")
    try:
        gb = float(env) if env else 20.0
    except ValueError:
        raise InputError(f"POUW_MODEL_CACHE_GB must be a number of GB, got {env!r}") from None
    return int(gb * 1e9)


def default_cache_dir() -> Path:
    """``$POUW_MODEL_CACHE``, else ``~/.cache/pouw/models``."""
    env = os.environ.get("POUW_MODEL_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "pouw" / "models"


@dataclass
class LoadedModel:
    """A model in memory, with the seed-independent data its checks reuse (built on first
    use, once)."""

    blob: str
    model: LlamaModel
    _checks: ModelChecks | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def checks(self) -> ModelChecks:
        """:func:`~oracle.compute.llm.verify.model_checks` of the weights (row norms)."""
        with self._lock:
            if self._checks is None:
                self._checks = model_checks(self.model.weights)
            return self._checks


def spec_shape(cfg: LlamaConfig) -> dict[str, int]:
    """The shape fields of an llm spec's ``model`` object for a model of ``cfg``."""
    return {
        "layers": cfg.n_layers,
        "dim": cfg.d_model,
        "ffn": cfg.d_ff,
        "heads": cfg.n_heads,
        "kv_heads": cfg.n_kv_heads,
        "head_dim": cfg.head_dim,
        "vocab": cfg.vocab_size,
        "context": cfg.context_length,
    }


def check_shape(spec_model: LlmModel, model: LlamaModel) -> None:
    """InputError naming the first field where the file's shape differs from the spec's."""
    for name, value in spec_shape(model.config).items():
        wanted = getattr(spec_model, name)
        if wanted != value:
            raise InputError(
                f"spec.model.{name}: the spec says {wanted}, the model file has {value}"
            )


class ModelCache:
    """Loaded models by blob name (module docstring)."""

    def __init__(self, directory: Path | None = None, capacity: int = 2) -> None:
        self._directory = directory
        self.capacity = capacity
        self._loaded: OrderedDict[str, LoadedModel] = OrderedDict()
        self._offered: dict[str, Path] = {}
        self._lock = threading.Lock()  # the table
        self._load_lock = threading.Lock()  # one load at a time: each takes ~1 GB while it runs

    @property
    def directory(self) -> Path:
        """Where fetched model files are kept."""
        return self._directory or default_cache_dir()

    def offer(self, path: str | os.PathLike[str]) -> str:
        """Make a local file available under its blob name (hashed once); returns the name."""
        p = Path(path)
        name = keccak256(p.read_bytes()).hex()
        with self._lock:
            self._offered[name] = p
        return name

    def add(self, path: str | os.PathLike[str], name: str, model: LlamaModel) -> None:
        """Keep ``model``, already loaded from the file at ``path`` whose blob name the caller
        computed (``name``, 0x optional), as if :meth:`offer` and :meth:`load` had found it:
        a requester's process that built a job on its file then runs or checks it without
        reading the file again."""
        key = name.removeprefix("0x").lower()
        with self._lock:
            self._offered[key] = Path(path)
            self._loaded[key] = LoadedModel(key, model)
            self._loaded.move_to_end(key)
            while len(self._loaded) > self.capacity:
                self._loaded.popitem(last=False)

    def path(self, blob: str, source: _Source | None) -> Path:
        """The model file of ``blob`` on disk, fetched through ``source`` if needed."""
        name = blob.removeprefix("0x").lower()
        with self._lock:
            offered = self._offered.get(name)
        if offered is not None and offered.is_file():
            return offered
        target = self.directory / f"{name}.gguf"
        if target.is_file():
            with contextlib.suppress(OSError):
                os.utime(target)  # recently used: the last the budget evicts
            return target
        if source is None:
            raise InputError(f"spec.model.blob: {blob} is not cached and there is no job store")
        data = source.get(name, max_size=MAX_MODEL_BYTES)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self.trim(keep=target)
        return target

    def trim(self, keep: Path | None = None, budget: int | None = None) -> list[Path]:
        """Delete the least recently used model files until the directory holds at most
        ``budget`` bytes (default :func:`default_cache_budget`), never ``keep``; returns the
        files deleted. Files are fetched again when a job needs them; a requester who posts
        many distinct models cannot fill a worker's or an oracle's disk."""
        limit = default_cache_budget() if budget is None else budget
        files = []
        for f in self.directory.glob("*.gguf"):
            with contextlib.suppress(OSError):
                st = f.stat()
                files.append((st.st_mtime, st.st_size, f))
        total = sum(size for _, size, _ in files)
        removed = []
        for _, size, f in sorted(files):
            if total <= limit:
                break
            if keep is not None and f == keep:
                continue
            with contextlib.suppress(FileNotFoundError):
                f.unlink()
                removed.append(f)
            total -= size
        return removed

    def load(
        self, blob: str, source: _Source | None, spec_model: LlmModel | None = None
    ) -> LoadedModel:
        """The loaded model of ``blob`` (its shape checked against ``spec_model`` if given):
        from memory, else from the cache directory, else fetched through ``source``.
        InputError if the file is not a model this loader runs."""
        name = blob.removeprefix("0x").lower()
        with self._lock:
            hit = self._loaded.get(name)
            if hit is not None:
                self._loaded.move_to_end(name)
        if hit is None:
            with self._load_lock:
                with self._lock:
                    hit = self._loaded.get(name)
                if hit is None:
                    path = self.path(name, source)
                    try:
                        model = load_llama_gguf(path)
                    except InputError as exc:
                        raise InputError(f"spec.model.blob: {exc}") from None
                    hit = LoadedModel(name, model)
                    with self._lock:
                        self._loaded[name] = hit
                        while len(self._loaded) > self.capacity:
                            self._loaded.popitem(last=False)
        if spec_model is not None:
            check_shape(spec_model, hit.model)
        return hit


#: The process's model cache (workers and oracles share it across jobs).
MODELS = ModelCache()
