"""An LLM job end to end on a real anvil: posted through ``pouw job create --kind llm``,
computed by a worker in its own process (which fetches the model from the job store into its
own cache directory), verified by 3 oracles at threshold 2, paid, and its completion returned
by ``pouw job result``; then ``pouw audit`` re-derives the verdict from public data.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from oracle.chain.client import STATUS_PAID, Chain
from oracle.compute.llm import DEFAULT_MODEL_FILE
from oracle.protocol.verdict import VerdictCode
from tests.e2e.conftest import key_file, wait_until
from tests.e2e.test_live_loop import Cluster, start_oracles
from tests.e2e.test_requester_inputs_live import create_args, pouw

MODEL_PATH = Path(__file__).resolve().parents[2] / ".pouw" / "models" / DEFAULT_MODEL_FILE


def _worker(anvil: Any, tmp_path: Path, keys: dict[str, Any], store: str, oracles: list[str]):
    keyfile = key_file(tmp_path, "worker", keys["honest"])
    cmd = [
        sys.executable, "-m", "oracle.cli.main", "worker", "run",
        "--rpc", anvil.url,
        "--deployments", str(tmp_path / "deployments"),
        "--keyfile", str(keyfile),
        "--spec-store", store,
        "--db", str(tmp_path / "worker.db"),
        "--store", str(tmp_path / "worker-blobs"),
        "--poll", "0.1",
    ]  # fmt: skip
    for url in oracles:
        cmd += ["--oracle-url", url]
    env = {**os.environ, "POUW_MODEL_CACHE": str(tmp_path / "worker-models")}
    log = (tmp_path / "worker.log").open("wb")
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)


def test_llm_job__three_oracles_at_threshold_two__paid__completion_returned(
    anvil, deploy, keys, tmp_path, spec_server
):
    if not MODEL_PATH.is_file():
        pytest.skip(f"{MODEL_PATH} absent: `make setup` fetches it")
    rec = deploy(2, 3)
    chain = Chain(anvil.url, rec)
    base = [*create_args(anvil, keys, tmp_path), "--spec-store", spec_server.url, "--json"]
    code, out, err = pouw(
        *base, "--kind", "llm", "--prompt", "The capital of France is", "--max-new-tokens", "6"
    )
    assert code == 0, err
    job_id = json.loads(out)[0]["job_id"]
    cluster = Cluster()
    worker = None
    try:
        nodes = start_oracles(anvil, rec, keys, tmp_path, spec_server.url, 3, cluster)
        urls = [n.server.url for n in nodes if n.server is not None]
        worker = _worker(anvil, tmp_path, keys, spec_server.url, urls)
        wait_until(lambda: chain.job_status(job_id) == STATUS_PAID, timeout=180)
        # every oracle reached the same VALID verdict (two signatures settle it)
        wait_until(lambda: all(n.ctx.db.verdicts_for_job(job_id) for n in nodes), timeout=60)
        verdicts = [v for n in nodes for v in n.ctx.db.verdicts_for_job(job_id)]
        assert len(verdicts) == 3
        assert all(v.verdict == VerdictCode.VALID for v in verdicts)
        assert len({v.transcript_hash for v in verdicts}) == 1
    finally:
        if worker is not None and worker.poll() is None:
            worker.kill()
            worker.wait(timeout=10)
        cluster.shutdown()
    # the worker fetched the model once, through the job store, into its cache directory
    assert [p.stat().st_size for p in (tmp_path / "worker-models").glob("*.gguf")] == [
        MODEL_PATH.stat().st_size
    ]
    common = ["--rpc", anvil.url, "--deployments", tmp_path / "deployments"]
    code, out, err = pouw("job", "result", job_id, *common, "--store", spec_server.url)
    assert code == 0, err
    assert f"job {job_id}: completion of {keys['honest'].address} verified" in err, err
    assert "prompt:     The capital of France is" in out, out
    assert "Paris" in out.split("completion:", 1)[1], out
    code, out, err = pouw("audit", job_id, *common, "--spec-store", spec_server.url)
    assert code == 0 and out.startswith(f"MATCH job {job_id}"), (out, err)
