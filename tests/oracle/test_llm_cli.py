"""``pouw job create --kind llm`` and the client's llm job (oracle.client.llm_job).

Every bad input (a GGUF of another architecture, an unsupported tensor type, a truncated or
absent file, a prompt over the limit or past the model's context, ``--max-new-tokens`` 0 or
over 256, a prompt given twice or not at all, ``--chat`` on a model without a template,
flags of another kind, a spec file naming a model no store holds) is one ``error:`` line with
exit 2, before the RPC is reached and with nothing published. On the default model: the spec
names the file by its keccak256, the prompt is the model's own tokenization, and the completion
of a token list reads back as text with the model fetched by its blob from a store into an
empty model cache.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from gguf import GGMLQuantizationType as QT

from oracle.cli.main import cli
from oracle.client.llm_job import completion_text, llm_job, publish_model
from oracle.compute.llm import DEFAULT_MODEL_FILE, GgufTokenizer, load_llama_gguf
from oracle.compute.llm.model_cache import MODELS
from oracle.exceptions import ConfigError
from oracle.protocol.hashing import keccak256
from oracle.protocol.spec import LlmSpec, work_units
from oracle.store.blobs import LocalBlobStore
from tests.oracle.test_llm_model import SYN, _synthetic_weights, _write_gguf

MODEL_PATH = Path(__file__).resolve().parents[2] / ".pouw" / "models" / DEFAULT_MODEL_FILE


@pytest.fixture(scope="module")
def syn_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("syn") / "syn.gguf"
    _write_gguf(path, _synthetic_weights(7, True), QT.Q4_1)
    return path


def _create(tmp_path: Path, *args: str) -> tuple[Any, Path]:
    key = tmp_path / "k.key"
    key.write_text("0x" + "11" * 32)
    key.chmod(0o600)
    store = tmp_path / "store"
    result = CliRunner(mix_stderr=False).invoke(
        cli,
        [
            "job", "create", "--keyfile", str(key), "--spec-store", str(store),
            "--amount", "1", "--rpc", "http://127.0.0.1:9", *args,
        ],
    )  # fmt: skip
    return result, store


def _refused(tmp_path: Path, *args: str) -> str:
    """The one error line of a refused ``job create``; asserts exit 2 and nothing published."""
    result, store = _create(tmp_path, *args)
    assert result.exit_code == 2, (result.output, result.stderr)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert result.stderr.strip().splitlines()[-1] == errors[0]
    assert "Traceback" not in result.stderr
    assert not store.exists() or not any(store.rglob("*")), "something was published"
    return errors[0]


def test_create__other_architecture__refused(tmp_path: Path) -> None:
    path = tmp_path / "gpt2.gguf"
    _write_gguf(path, _synthetic_weights(2, True), arch="gpt2")
    line = _refused(tmp_path, "--kind", "llm", "--model", str(path), "--prompt-ids", "5,6")
    assert line == "error: --model: GGUF general.architecture is 'gpt2'; only 'llama' is supported"


def test_create__unsupported_quantization__refused(tmp_path: Path) -> None:
    path = tmp_path / "q5.gguf"
    _write_gguf(path, _synthetic_weights(4, True), QT.Q5_0)
    line = _refused(tmp_path, "--kind", "llm", "--model", str(path), "--prompt-ids", "5,6")
    assert line.startswith("error: --model: tensor blk.0.attn_q.weight: type Q5_0 is not supported")


def test_create__truncated_model__refused(tmp_path: Path, syn_model: Path) -> None:
    cut = tmp_path / "cut.gguf"
    data = syn_model.read_bytes()
    cut.write_bytes(data[: len(data) - 100])
    line = _refused(tmp_path, "--kind", "llm", "--model", str(cut), "--prompt-ids", "5,6")
    assert line.startswith(f"error: --model: {cut}: truncated: "), line


def test_create__absent_model__refused(tmp_path: Path) -> None:
    line = _refused(
        tmp_path, "--kind", "llm", "--model", str(tmp_path / "no.gguf"), "--prompt-ids", "5"
    )
    assert line == f"error: --model {tmp_path / 'no.gguf'}: no such file"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--prompt-ids", ",".join(["5"] * 513)], "error: --prompt: 513 tokens, the limit is 512"),
        (
            ["--prompt-ids", ",".join(["5"] * 60), "--max-new-tokens", "8"],
            f"error: --prompt: 60 tokens + --max-new-tokens 8 exceed the model's context of "
            f"{SYN['ctx']}",
        ),
        (["--prompt-ids", "5", "--max-new-tokens", "257"], "error: --max-new-tokens must be in"),
        (["--prompt-ids", "5", "--prompt", "t5"], "error: give exactly one of --prompt TEXT or"),
        ([], "error: give exactly one of --prompt TEXT or --prompt-ids"),
        (["--prompt-ids", "5,x"], "error: --prompt-ids: entry 1 ('x') is not a token id"),
        (
            ["--prompt-ids", f"5,{SYN['vocab']}"],
            f"error: --prompt-ids: token id {SYN['vocab']} is outside the model's vocabulary",
        ),
        (["--prompt", "t5", "--chat"], "error: --chat: GGUF has no tokenizer.chat_template"),
        (["--prompt-ids", "5", "--chat"], "error: --chat applies to --prompt text only"),
        (["--prompt-ids", "5", "--n", "64"], "error: --kind llm takes --prompt/--prompt-ids"),
        (["--prompt-ids", "5", "--mode", "full"], "error: --kind llm takes --prompt/--prompt-ids"),
    ],
)
def test_create__bad_llm_input__one_line_nothing_published(
    tmp_path: Path, syn_model: Path, args: list[str], expected: str
) -> None:
    line = _refused(tmp_path, "--kind", "llm", "--model", str(syn_model), *args)
    assert line.startswith(expected), line


def test_create__max_new_tokens_zero__refused_by_the_parser(
    tmp_path: Path, syn_model: Path
) -> None:
    result, store = _create(
        tmp_path, "--kind", "llm", "--model", str(syn_model), "--prompt-ids", "5",
        "--max-new-tokens", "0",
    )  # fmt: skip
    assert result.exit_code == 2
    assert "--max-new-tokens" in result.stderr and "0 is not in the range x>=1" in result.stderr
    assert not store.exists()


def test_create__llm_flags_on_another_kind__refused(tmp_path: Path) -> None:
    line = _refused(tmp_path, "--kind", "matmul", "--n", "8", "--prompt", "hi", "--chat")
    assert line == "error: --prompt, --chat apply to --kind llm only"


def test_create__good_llm_job__reaches_the_chain_only_then(tmp_path: Path, syn_model: Path) -> None:
    """A valid job is checked through and stops where the deployment is looked up: still
    nothing published, because the model and the spec go out only after the market answered."""
    result, store = _create(
        tmp_path, "--kind", "llm", "--model", str(syn_model), "--prompt", "abcd"
    )
    assert result.exit_code == 2
    assert "no pouw deployment recorded" in result.stderr.splitlines()[-1]
    assert f"model {syn_model}: loading and checking" in result.stderr
    assert not store.exists()


def test_create__llm_spec_file_without_its_model__refused(tmp_path: Path) -> None:
    """A spec file naming a model no store holds would be a job no worker can run."""
    from tests.oracle.test_llm_spec import SMOL, llm

    spec_file = tmp_path / "llm.json"
    spec_file.write_text(json.dumps(llm()))
    line = _refused(tmp_path, "--spec-file", str(spec_file))
    assert f"the model blob {SMOL['blob']} is in none of the --spec-store" in line, line


# -- the default model ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smol_path() -> Path:
    if not MODEL_PATH.is_file():
        pytest.skip(f"{MODEL_PATH} is absent: `make setup` fetches it")
    return MODEL_PATH


def test_llm_job__default_model__spec_names_the_file_and_the_tokens(
    smol_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = llm_job(smol_path, prompt="The capital of France is", prompt_ids=None, max_new_tokens=8)
    p = job.spec.params
    assert isinstance(p, LlmSpec)
    data = smol_path.read_bytes()
    assert job.blob == p.model.blob == "0x" + keccak256(data).hex()
    model = load_llama_gguf(smol_path)
    tok = GgufTokenizer(model.vocab)
    assert list(p.prompt) == tok.encode("The capital of France is")
    assert job.prompt_text == "The capital of France is"
    assert (p.model.layers, p.model.dim, p.model.heads, p.model.kv_heads) == (30, 576, 9, 3)
    assert p.eos == model.vocab.eos_id and p.max_new_tokens == 8 and p.openings == 16
    assert work_units(job.spec) > 2 * 100_000_000 * (len(p.prompt) + 7)  # ≥ 2·params·positions
    # the loaded model stays in the process's model cache: nothing reads the file again
    import oracle.compute.llm.model_cache as model_cache

    def no_load(path: object) -> None:
        raise AssertionError("loaded again")

    monkeypatch.setattr(model_cache, "load_llama_gguf", no_load)
    assert MODELS.load(job.blob, None, p.model).model.config.n_layers == 30
    monkeypatch.undo()
    chat = llm_job(smol_path, prompt="Hi", prompt_ids=None, max_new_tokens=8, chat=True)
    assert chat.spec.params.prompt == tuple(tok.encode_chat([{"role": "user", "content": "Hi"}]))  # type: ignore[union-attr]


def test_publish_and_completion__model_fetched_by_blob_into_an_empty_cache(
    smol_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = llm_job(smol_path, prompt="The capital of France is", prompt_ids=None, max_new_tokens=8)
    store = tmp_path / "store"
    assert publish_model(job, [str(store)]) == [str(store)]
    assert LocalBlobStore(store).has(job.blob)
    assert publish_model(job, [str(store)]) == []  # not sent twice
    monkeypatch.setenv("POUW_MODEL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(MODELS, "_offered", {})
    tok = GgufTokenizer(load_llama_gguf(smol_path).vocab)
    eos = job.spec.params.eos  # type: ignore[union-attr]
    prompt, text = completion_text(job.spec, [*tok.encode(" Paris."), eos], [str(store)])
    assert (prompt, text) == ("The capital of France is", " Paris.")
    assert (tmp_path / "cache" / f"{job.blob[2:]}.gguf").read_bytes() == smol_path.read_bytes()
    with pytest.raises(ConfigError, match="not an llm job"):
        from oracle.protocol.spec import parse_spec

        seeded = {"version": 1, "kind": "matmul", "dtype": "int8", "m": 2, "n": 2, "k": 2}
        completion_text(
            parse_spec({**seeded, "inputs": {"seed": 0}, "verify": {"mode": "full"}}), [1], []
        )
