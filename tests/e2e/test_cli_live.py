"""The requester's and auditor's commands on a real anvil: `pouw deploy`, `job create`,
`job show`, `status` and `audit`, with a worker and an oracle node running as threads.

`audit` agrees with honest oracles (exit 0) and catches both a wrong result (exit 1) and a
settlement whose posted transcript hash is not the one the data gives (exit 1)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from oracle.chain import deployments
from oracle.chain.client import STATUS_PAID, Chain, TxSender
from oracle.cli.main import cli
from oracle.compute.work import compute, result_root
from oracle.protocol.attestation import Attestation, sign_settlement
from oracle.protocol.commitment import commitment
from oracle.protocol.hashing import keccak256
from oracle.protocol.results import encode_result
from oracle.protocol.verdict import VerdictCode
from oracle.store.specs import SpecStore
from tests.e2e.conftest import key_file
from tests.e2e.test_live_loop import Cluster, start_oracles, start_worker


def pouw(*args: Any) -> tuple[int, str]:
    result = CliRunner(mix_stderr=False).invoke(cli, [str(a) for a in args])
    return result.exit_code, result.stdout + result.stderr


def test_cli__deploy_create_show_status_audit(anvil, keys, tmp_path: Path, spec_server):
    deps = tmp_path / "deployments"
    common = ["--rpc", anvil.url, "--deployments", deps]
    oracle = keys["oracles"][0]
    code, out = pouw("deploy", *common, "--dev", "--oracle", oracle.address, "--threshold", 1)
    assert code == 0, out
    rec = deployments.load("ethereum:local:foundry", deps)
    assert rec.threshold == 1 and rec.oracles == [oracle.address]
    code, out = pouw("deploy", *common, "--dev", "--oracle", oracle.address)
    assert code == 2 and "--force" in out  # never silently replaces a live deployment

    req_key = key_file(tmp_path, "requester", keys["requester"])
    create = ["job", "create", *common, "--keyfile", req_key, "--spec-store", spec_server.url]
    code, out = pouw(*create, "--n", 16, "--count", 2, "--price", "1gwei", "--json")
    assert code == 0, out
    posted = json.loads(out)
    full_jobs = [p["job_id"] for p in posted]
    assert [p["amount"] for p in posted] == [2 * 16**3 * 10**9] * 2
    code, out = pouw(
        *create,
        "--n",
        16,
        "--seed",
        5,
        "--mode",
        "sampled",
        "--openings",
        4,
        "--amount",
        "0.001ether",
    )
    assert code == 0, out
    sampled_job = int(out.split()[0])
    jobs = [*full_jobs, sampled_job]

    rec = deployments.load("ethereum:local:foundry", deps)
    chain = Chain(anvil.url, rec)
    honest = keys["honest"].address
    cluster = Cluster()
    try:
        nodes = start_oracles(anvil, rec, keys, tmp_path, spec_server.url, 1, cluster)
        w = start_worker(
            anvil,
            rec,
            keys["honest"],
            tmp_path,
            "honest",
            spec_server.url,
            [n.server.url for n in nodes if n.server is not None],
            cluster,
        )
        # `job wait` follows them to the end: exit 0, one line per job, paid to the worker.
        code, out = pouw("job", "wait", *jobs, *common, "--timeout", 40, "--poll", 0.2)
        assert code == 0, out
        for j in jobs:
            assert f"job {j}: paid to {honest} after " in out, out
        assert all(chain.job_status(j) == STATUS_PAID for j in jobs)

        code, out = pouw("job", "show", full_jobs[0], *common, "--json")
        assert code == 0, out
        shown = json.loads(out)
        assert shown["status"] == "paid" and shown["asset"] == "ETH"
        assert [s["worker"] for s in shown["submissions"]] == [honest]
        assert [o["event"] for o in shown["outcomes"]] == ["JobSettled"]

        code, out = pouw("status", *common, "--json")
        assert code == 0, out
        st = json.loads(out)
        assert st["jobs"]["created"] == 3 and st["jobs"]["settled"] == 3
        (row,) = st["leaderboard"]
        assert row["worker"] == honest and row["settled_jobs"] == 3
        assert row["share_all"] == 1.0 and row["units_all"] == 3 * 2 * 16**3
        assert row["escrow_earned"]["ETH"] == sum(p["amount"] for p in posted) + 10**15
        code, out = pouw("status", *common)
        assert code == 0 and "leaderboard" in out and honest in out

        for j in jobs:  # the worker still serves: audit exactly as an oracle would fetch
            code, out = pouw(
                "audit",
                j,
                *common,
                "--spec-store",
                spec_server.url,
                "--worker-url",
                w.server.url if w.server else "",
            )
            assert code == 0 and out.startswith("MATCH"), out
        # ...or from a blob store holding the result (here: the worker's own directory).
        blob = w.db.job(full_jobs[0])["blob"]
        by_blob = ["audit", full_jobs[0], *common, "--spec-store", spec_server.url, "--blob", blob]
        code, out = pouw(*by_blob, "--blob-store", tmp_path / "honest-blobs")
        assert code == 0 and out.startswith("MATCH"), out
        code, out = pouw(*by_blob)
        assert code == 2 and "--blob-store" in out and len(out.strip().splitlines()) == 1
        code, out = pouw(*by_blob, "--blob-store", tmp_path / "empty-store")
        assert code == 2 and len(out.strip().splitlines()) == 1, out
        worker_url = w.server.url if w.server else ""
    finally:
        cluster.shutdown()
    # The worker is gone: auditing from its URL is a one-line error, not a verdict.
    code, out = pouw(
        "audit", full_jobs[0], *common, "--spec-store", spec_server.url, "--worker-url", worker_url
    )
    assert code == 2 and "worker server" in out and len(out.strip().splitlines()) == 1, out

    # The auditor holds results instead: the true one matches, a wrong one does not.
    store = SpecStore([spec_server.url])
    spec = store.get(bytes.fromhex(shown["spec_hash"][2:]))
    result = compute(spec)
    good, bad = tmp_path / "good.bin", tmp_path / "bad.bin"
    good.write_bytes(encode_result(result))
    tampered = result.copy()
    tampered.flat[3] += 1
    bad.write_bytes(encode_result(tampered))
    audit = ["audit", full_jobs[0], *common, "--spec-store", spec_server.url, "--json"]
    code, out = pouw(*audit, "--result-file", good)
    assert code == 0 and json.loads(out)["match"], out
    code, out = pouw(*audit, "--result-file", bad)
    assert code == 1, out
    (finding,) = json.loads(out)["findings"]
    assert finding["posted_verdict"] == "VALID" and finding["derived_verdict"] == "INVALID"

    # A lying oracle: a correct result settled with a transcript hash the data does not give.
    code, out = pouw(*create, "--n", 16, "--seed", 77, "--price", "1gwei")
    assert code == 0, out
    job = int(out.split()[0])
    spec = store.get(
        bytes.fromhex(json.loads(pouw("job", "show", job, *common, "--json")[1])["spec_hash"][2:])
    )
    result = compute(spec)
    c = commitment(honest, result_root(spec, result))
    TxSender(chain, keys["honest"]).send(
        chain.market.functions.submit_results([(job, c)]), "submit"
    )
    block = int(chain.call("submissions", job, honest)[1])
    forged = Attestation(job, honest, c, block, 2 * 16**3, VerdictCode.VALID, keccak256(b"forged"))
    until = chain.now() + 900
    sig = sign_settlement(oracle, chain.chain_id, chain.market.address, [forged], until)
    TxSender(chain, oracle).send(
        chain.market.functions.settle([forged.as_tuple()], until, [sig.as_tuple()]), "settle"
    )
    (tmp_path / "r77.bin").write_bytes(encode_result(result))
    code, out = pouw(
        "audit",
        job,
        *common,
        "--spec-store",
        spec_server.url,
        "--result-file",
        tmp_path / "r77.bin",
    )
    assert code == 1 and out.startswith("MISMATCH"), out
    assert "derived VALID" in out  # the verdict agrees; the transcript hash does not

    code, out = pouw("audit", 999, *common, "--spec-store", spec_server.url, "--result-file", good)
    assert code == 2 and "does not exist" in out


def test_cli__cancel_refund_and_their_errors(anvil, keys, tmp_path: Path, spec_server):
    """`job cancel` returns an open job's escrow at once; `job refund`/`cancel` of a job that
    does not exist says so (not "job not open"); `--deadline-in` beyond the market's horizon
    names the limit before anything is published or escrowed; `job show` prints the deadline
    as a date; the missing-deployment error names `pouw deploy`."""
    deps = tmp_path / "deployments"
    common = ["--rpc", anvil.url, "--deployments", deps]
    code, out = pouw("job", "show", 1, *common)
    assert code == 2 and "pouw deploy --network ethereum:local:foundry" in out, out
    code, out = pouw("deploy", *common, "--dev", "--oracle", keys["oracles"][0].address)
    assert code == 0, out
    req_key = key_file(tmp_path, "requester", keys["requester"])
    create = ["job", "create", *common, "--keyfile", req_key, "--spec-store", spec_server.url]
    code, out = pouw(*create, "--n", 8, "--price", "1gwei", "--deadline-in", 10**8)
    assert code == 2 and "beyond this market's max_horizon of" in out, out
    code, out = pouw(*create, "--n", 8, "--price", "1gwei", "--json")
    assert code == 0, out
    [posted] = json.loads(out)
    job = posted["job_id"]
    code, out = pouw("job", "show", job, *common)
    assert (code == 0 and " UTC, in 59 min" in out) or " UTC, in 60 min" in out, out
    for cmd in ("refund", "cancel"):
        code, out = pouw("job", cmd, 7, *common, "--keyfile", req_key)
        assert code == 2 and "job 7 does not exist (this market has jobs 1 to 1)" in out, out
    code, out = pouw("job", "wait", job, *common, "--timeout", 0.5, "--poll", 0.1)
    assert code == 1 and f"job {job}: open" in out, out  # nobody took it: timed out
    code, out = pouw("job", "cancel", job, *common, "--keyfile", req_key)
    assert code == 0 and f"job {job} cancelled: {2 * 8**3 * 10**9:,}" in out, out
    code, out = pouw("job", "wait", job, *common, "--timeout", 5)
    assert code == 1 and f"job {job}: cancelled after " in out, out
    code, out = pouw("job", "wait", job, 99, *common)
    assert code == 2 and "job 99 does not exist (this market has jobs 1 to 1)" in out, out
    rec = deployments.load("ethereum:local:foundry", deps)
    chain = Chain(anvil.url, rec)
    assert chain.job_status(job) == 4  # cancelled
    code, out = pouw("withdraw", *common, "--keyfile", req_key)
    assert code == 0, out
    assert int(chain.call("credited", keys["requester"].address, "0x" + "00" * 20)) == 0
