"""``llm``: decoder-only transformer inference on an open model read from a GGUF file.

* :mod:`~oracle.compute.llm.gguf_model`: the file → hyperparameters, float32 weights, vocab;
* :mod:`~oracle.compute.llm.tokenizer`: byte-level BPE from the GGUF vocabulary, chat template;
* :mod:`~oracle.compute.llm.forward_pass`: the numpy forward pass, KV cache, linear-map trace hook;
* :mod:`~oracle.compute.llm.generate`: greedy decoding;
* :mod:`~oracle.compute.llm.work_units`: the FLOPs a generation is credited with;
* :mod:`~oracle.compute.llm.checks`: the elementwise checks between the linear maps, with their
  fp32 tolerances (what an oracle will hold a committed trace to).

The default model is SmolLM2-135M-Instruct in Q4_1 (:data:`DEFAULT_MODEL_FILE`, fetched by
``make setup`` into ``.pouw/models/``).
"""

from oracle.compute.llm.forward_pass import LINEAR_MAPS, KVCache, TraceHook, forward
from oracle.compute.llm.generate import Generation, greedy_generate
from oracle.compute.llm.gguf_model import (
    SUPPORTED_TYPES,
    GgufVocab,
    LayerWeights,
    LlamaConfig,
    LlamaModel,
    LlamaWeights,
    dequantize_tensor,
    load_llama_gguf,
)
from oracle.compute.llm.tokenizer import GgufTokenizer
from oracle.compute.llm.work_units import ForwardWork, forward_work, linear_macs_per_position

__all__ = [
    "DEFAULT_MODEL_FILE",
    "LINEAR_MAPS",
    "SUPPORTED_TYPES",
    "ForwardWork",
    "Generation",
    "GgufTokenizer",
    "GgufVocab",
    "KVCache",
    "LayerWeights",
    "LlamaConfig",
    "LlamaModel",
    "LlamaWeights",
    "TraceHook",
    "dequantize_tensor",
    "forward",
    "forward_work",
    "greedy_generate",
    "linear_macs_per_position",
    "load_llama_gguf",
]

#: File name of the default model under ``.pouw/models/``.
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
