"""The model's tokenizer, rebuilt from the GGUF vocabulary with the ``tokenizers`` library.

Only byte-level BPE (``tokenizer.ggml.model`` = ``gpt2``) is supported, with the
pre-tokenizers llama.cpp names ``default``/``gpt2`` (GPT-2's split regex, byte-level) and
``smollm`` (every digit split off first, then GPT-2's regex: llama.cpp's
``LLAMA_VOCAB_PRE_TYPE_SMOLLM`` regexes, and SmolLM2's own ``tokenizer.json``). Any other model
or pre-tokenizer raises :class:`~oracle.exceptions.InputError` rather than tokenizing
differently from the model's training.

Tokens of type CONTROL (3) are added as special tokens (``<|im_start|>`` is one id, never split
by BPE); USER_DEFINED (4) tokens as plain added tokens.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jinja2
import jinja2.sandbox
from gguf import TokenType
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

from oracle.compute.llm.gguf_model import GgufVocab
from oracle.exceptions import InputError

__all__ = ["PRE_TOKENIZERS", "GgufTokenizer"]

#: ``tokenizer.ggml.pre`` values this module can reproduce.
PRE_TOKENIZERS = frozenset({"default", "gpt2", "smollm"})


def _pre_tokenizer(pre: str) -> pre_tokenizers.PreTokenizer:
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if pre == "smollm":
        return pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
    return byte_level


class GgufTokenizer:
    """Encode text to token ids and back, as the GGUF's vocabulary and merges define."""

    def __init__(self, vocab: GgufVocab) -> None:
        if vocab.model != "gpt2":
            raise InputError(
                f"GGUF tokenizer.ggml.model {vocab.model!r} is not supported (only 'gpt2')"
            )
        if vocab.pre not in PRE_TOKENIZERS:
            raise InputError(
                f"GGUF tokenizer.ggml.pre {vocab.pre!r} is not supported "
                f"(supported: {', '.join(sorted(PRE_TOKENIZERS))})"
            )
        ids: dict[str, int] = {}
        for i, text in enumerate(vocab.tokens):
            ids.setdefault(text, i)
        merges: list[tuple[str, str]] = []
        for m in vocab.merges:
            left, sep, right = m.partition(" ")
            if not sep:
                raise InputError(f"GGUF tokenizer.ggml.merges entry {m!r} is not 'left right'")
            for piece in (left, right, left + right):
                if piece not in ids:  # the tokenizers library would panic on it
                    raise InputError(
                        f"GGUF tokenizer.ggml.merges entry {m!r}: {piece!r} is not in the "
                        "vocabulary"
                    )
            merges.append((left, right))
        tok = Tokenizer(models.BPE(vocab=ids, merges=merges, fuse_unk=False))
        tok.pre_tokenizer = _pre_tokenizer(vocab.pre)
        tok.decoder = decoders.ByteLevel()
        special = [
            AddedToken(t, special=True, normalized=False)
            for t, ty in zip(vocab.tokens, vocab.token_types, strict=True)
            if ty == TokenType.CONTROL
        ]
        user = [
            AddedToken(t, special=False, normalized=False)
            for t, ty in zip(vocab.tokens, vocab.token_types, strict=True)
            if ty == TokenType.USER_DEFINED
        ]
        tok.add_special_tokens(special)
        if user:
            tok.add_tokens(user)
        self._tok = tok
        self.vocab = vocab
        self.bos_id = vocab.bos_id
        self.eos_id = vocab.eos_id
        self.chat_template = vocab.chat_template

    @property
    def vocab_size(self) -> int:
        """Number of token ids (the GGUF's token list)."""
        return len(self.vocab.tokens)

    def token_id(self, token: str) -> int | None:
        """The id of one vocabulary entry (e.g. ``"<|im_end|>"``), or None."""
        return self._tok.token_to_id(token)

    def encode(self, text: str, *, add_bos: bool | None = None) -> list[int]:
        """Token ids of ``text``; special tokens written in the text are recognized.

        A BOS id is prepended when ``add_bos`` is true, or when it is None and the GGUF's
        ``tokenizer.ggml.add_bos_token`` says so (false for SmolLM2).
        """
        out = list(self._tok.encode(text, add_special_tokens=False).ids)
        bos = self.vocab.add_bos if add_bos is None else add_bos
        if bos and self.bos_id is not None:
            out.insert(0, self.bos_id)
        return out

    def decode(self, ids: Sequence[int], *, skip_special: bool = False) -> str:
        """The text of ``ids`` (bytes of partial UTF-8 sequences become U+FFFD)."""
        for i in ids:
            if not 0 <= int(i) < self.vocab_size:
                raise InputError(f"token id {i} is outside the vocabulary (0..{self.vocab_size})")
        return str(self._tok.decode([int(i) for i in ids], skip_special_tokens=skip_special))

    def render_chat(
        self,
        messages: Sequence[Mapping[str, str]],
        *,
        add_generation_prompt: bool = True,
        **extra: Any,
    ) -> str:
        """``messages`` rendered with the GGUF's ``tokenizer.chat_template`` (sandboxed jinja2).

        SmolLM2's template is ChatML (``<|im_start|>role\\ncontent<|im_end|>\\n``) and inserts a
        default system message when the first message is not one.
        """
        if self.chat_template is None:
            raise InputError("GGUF has no tokenizer.chat_template")
        env = jinja2.sandbox.ImmutableSandboxedEnvironment(
            trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined
        )

        def raise_exception(message: str) -> None:
            raise InputError(f"chat template: {message}")

        env.globals["raise_exception"] = raise_exception
        try:
            template = env.from_string(self.chat_template)
            return template.render(
                messages=[dict(m) for m in messages],
                add_generation_prompt=add_generation_prompt,
                bos_token=self._token_text(self.bos_id),
                eos_token=self._token_text(self.eos_id),
                **extra,
            )
        except jinja2.TemplateError as exc:
            raise InputError(f"chat template: {exc}") from exc

    def encode_chat(
        self, messages: Sequence[Mapping[str, str]], *, add_generation_prompt: bool = True
    ) -> list[int]:
        """Token ids of the rendered chat (no extra BOS: the template places what it needs)."""
        text = self.render_chat(messages, add_generation_prompt=add_generation_prompt)
        return self.encode(text, add_bos=False)

    def _token_text(self, token: int | None) -> str:
        return "" if token is None else self.vocab.tokens[token]
