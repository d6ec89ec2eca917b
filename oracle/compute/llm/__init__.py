"""The llm job kind: a Llama-architecture decoder read from a GGUF file, and its checks."""
