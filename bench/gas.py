"""Gas of every JobMarket entry point on anvil (a real node), written to bench/results.json.

Run: `make bench` (or `.venv/bin/python bench/gas.py`). Starts anvil through ape-foundry,
deploys a fresh protocol, and measures receipts' `gasUsed` (what a user pays, refunds
included). Settle batches are measured with 8 workers who already hold credited
balances and work in the current epoch (the steady state of a busy market).
"""

from __future__ import annotations

import sys
from pathlib import Path

from eth_account import Account
from eth_utils import keccak
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._results import merge_results  # noqa: E402
from oracle.chain.ape_batches import settled_batch  # noqa: E402
from oracle.chain.ape_deploy import deploy_protocol  # noqa: E402
from oracle.protocol.attestation import Attestation, order_signatures, sign_settlement  # noqa: E402

#: Signatures valid until year 36812: gas does not depend on the value.
VALID_UNTIL = 2**40
from oracle.protocol.params import ProtocolParams  # noqa: E402
from oracle.protocol.settled import SettledBatch  # noqa: E402

ETHER = 10**18
ZERO = "0x0000000000000000000000000000000000000000"
EPOCH, EMISSION, HALVING = 3_600, 1_000 * ETHER, 4


def entry_check_gas(project, deployer) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Gas of checking one entry of an int8 blob job at m = n = k = 4096 (entry_check.vy's
    `_refutes_int8` through the test harness, as a transaction: calldata included): three
    Merkle openings (the 512-byte chunk of C's row holding the entry, the result tree having 32
    leaves per 16 KiB row, A's row and B's column of 4 KiB), the exact dot product, the
    comparison; and the same for a seeded job (row i of A and column j of B regenerated
    on-chain from the keccak stream, only C's chunk in calldata), int8 and fp32
    (the exact dot product and the bound no honest summation exceeds). What a dispute
    will add (the job's terms, the commitment, the
    bonds moved) is not in this figure.

    Measured on this anvil (its default fork, Prague) and on a second anvil under Cancun's
    rules: the ~9 KB of calldata (A's row and B's column), nearly all non-zero, can put the
    Prague transaction on EIP-7623's floor of 40 gas per non-zero byte, where the calldata, not
    the execution, sets the price. Also the dot product alone (two 4 KiB vectors) under Cancun,
    and its execution per multiply-add (its gas less the 21,000 base and the standard calldata
    cost)."""
    import numpy as np
    from web3 import Web3

    from oracle.chain.anvil import start_anvil, stop_anvil
    from oracle.compute.merkle import MerkleTree, chunks_per_row

    size = 4096
    p = chunks_per_row(size, 4)
    rng = np.random.default_rng(0)
    a = rng.integers(-128, 128, (size, size), dtype=np.int8)
    cols = rng.integers(-128, 128, (size, size), dtype=np.int8)  # B column-major
    c = rng.integers(-(2**31), 2**31, (size, size), dtype=np.int64).astype("<i4")
    trees = [MerkleTree.from_rows(x.tobytes(), size * q) for x, q in ((c, p), (a, 1), (cols, 1))]
    i, j = 1234, 2345
    w = size // p  # entries per chunk; C[i][j] is in chunk j // w of row i
    leaf = i * p + j // w
    harness = project.EntryCheckHarness.deploy(sender=deployer)
    args = (
        trees[0].root, trees[1].root, trees[2].root, size, size, i, j,
        c.reshape(-1, w)[leaf].tobytes(), trees[0].proof(leaf), a[i].tobytes(), trees[1].proof(i),
        cols[j].tobytes(), trees[2].proof(j),
    )  # fmt: skip
    assert harness.refutes_int8(*args)  # a random C: the entry is wrong
    data = bytes(harness.refutes_int8.encode_input(*args))
    zeros = data.count(0)
    out = {
        "gas": int(harness.refutes_int8.estimate_gas_cost(*args, sender=deployer)),
        "calldata_bytes": len(data),
        "floor": 21_000 + 10 * (zeros + 4 * (len(data) - zeros)),
    }
    seed = 20241205
    seeded = (trees[0].root, seed, size, size, size, i, j, *args[7:9])
    assert harness.refutes_int8_seeded(*seeded)
    out["seeded"] = int(harness.refutes_int8_seeded.estimate_gas_cost(*seeded, sender=deployer))
    cf = rng.standard_normal((size, size)).astype("<f4")  # a random fp32 C: entries wrong
    f_tree = MerkleTree.from_rows(cf.tobytes(), size * p)
    f_open = (cf.reshape(-1, w)[leaf].tobytes(), f_tree.proof(leaf))
    fp32 = (f_tree.root, seed, size, size, size, i, j, *f_open)
    assert harness.refutes_fp32_seeded(*fp32)
    out["fp32_seeded"] = int(harness.refutes_fp32_seeded.estimate_gas_cost(*fp32, sender=deployer))
    ct = project.EntryCheckHarness.contract_type
    abi = [x.model_dump(mode="json", by_alias=True, exclude_none=True) for x in ct.abi]
    proc, url = start_anvil(hardfork="cancun")
    try:
        w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 120}))
        sender = w3.eth.accounts[0]
        tx = w3.eth.contract(abi=abi, bytecode=ct.deployment_bytecode.bytecode).constructor()
        receipt = w3.eth.wait_for_transaction_receipt(tx.transact({"from": sender}))
        h = w3.eth.contract(address=receipt.contractAddress, abi=abi)
        out["gas_cancun"] = h.functions.refutes_int8(*args).estimate_gas({"from": sender})
        out["seeded_cancun"] = h.functions.refutes_int8_seeded(*seeded).estimate_gas(
            {"from": sender}
        )
        out["fp32_seeded_cancun"] = h.functions.refutes_fp32_seeded(*fp32).estimate_gas(
            {"from": sender}
        )
        vec = (a[i].tobytes(), cols[j].tobytes())
        dot = h.functions.dot_int8(*vec).estimate_gas({"from": sender})
        dot_data = bytes.fromhex(h.encode_abi("dot_int8", vec)[2:])
        nz = len(dot_data) - dot_data.count(0)
        out["dot_execution_per_mac"] = round(
            (dot - 21_000 - 16 * nz - 4 * dot_data.count(0)) / size
        )
    finally:
        stop_anvil(proc)
    return out


def dispute_fixtures(seed: int = 20241205, size: int = 4096) -> dict[str, object]:  # type: ignore[type-arg]
    """The three disputed jobs at m = n = k = 4096, each as (spec object, result tree (32
    leaves per row, ``chunks_per_row``), the wrong entry's row of C, and for the blob job the
    openings of A and B): a seeded int8
    and a seeded fp32 job (spec version 2: the inputs are the keccak stream, so only row i of
    C is computed, right except at column j) and an int8 job on blobs. The other rows of C
    are random bytes: a dispute opens one chunk of one row."""
    import numpy as np

    from oracle.compute.keccak_inputs import keccak_lines
    from oracle.compute.merkle import MerkleTree, chunks_per_row

    p = chunks_per_row(size, 4)
    rng = np.random.default_rng(1)
    i, j = 1234, 2345
    verify = {"mode": "full"}
    out: dict[str, object] = {"i": i, "j": j}
    for dtype in ("int8", "fp32"):
        width = 1 if dtype == "int8" else 4
        a_i = keccak_lines(seed, 0, i + 1, size * width)[i]
        cols = keccak_lines(seed, 1, size, size * width)
        if dtype == "int8":
            row = cols.view(np.int8).astype(np.int32) @ a_i.view(np.int8).astype(np.int32)
            row[j] += 1
            c_row = row.astype("<i4").tobytes()
        else:

            def grid(raw):  # type: ignore[no-untyped-def]
                u = raw.view("<u4") >> np.uint32(8)
                return (u.view(np.int32) - np.int32(1 << 23)).astype(np.float64) * 2.0**-23

            row = (grid(cols.reshape(-1)).reshape(size, size) @ grid(a_i)).astype(np.float32)
            row[j] += np.float32(1.0)
            c_row = row.astype("<f4").tobytes()
        rows = rng.integers(0, 256, (size, 4 * size), dtype=np.uint8)
        rows[i] = np.frombuffer(c_row, dtype=np.uint8)
        tree = MerkleTree.from_rows(rows.tobytes(), size * p)
        spec = {"dtype": dtype, "inputs": {"seed": seed}, "k": size, "kind": "matmul"}
        spec |= {"m": size, "n": size, "verify": verify, "version": 2}
        out[f"{dtype}_seeded"] = (spec, tree, c_row)
    a = rng.integers(-128, 128, (size, size), dtype=np.int8)
    cols8 = rng.integers(-128, 128, (size, size), dtype=np.int8)  # B column-major
    row = cols8.astype(np.int32) @ a[i].astype(np.int32)
    row[j] -= 1
    rows = rng.integers(0, 256, (size, 4 * size), dtype=np.uint8)
    rows[i] = np.frombuffer(row.astype("<i4").tobytes(), dtype=np.uint8)
    tree = MerkleTree.from_rows(rows.tobytes(), size * p)
    a_tree, b_tree = (
        MerkleTree.from_rows(a.tobytes(), size),
        MerkleTree.from_rows(cols8.tobytes(), size),
    )
    inputs = {
        "a": {"blob": "0x" + keccak(a.tobytes()).hex(), "root": "0x" + a_tree.root.hex()},
        "b": {"blob": "0x" + keccak(cols8.tobytes()).hex(), "root": "0x" + b_tree.root.hex()},
    }
    spec = {"dtype": "int8", "inputs": inputs, "k": size, "kind": "matmul", "m": size}
    spec |= {"n": size, "verify": verify, "version": 1}
    out["int8_blob"] = (
        spec,
        tree,
        row.astype("<i4").tobytes(),
        (a[i].tobytes(), a_tree.proof(i), cols8[j].tobytes(), b_tree.proof(j)),
    )
    return out


def dispute_gas() -> dict[str, int]:
    """Gas of a whole dispute (``Disputes.dispute_seeded`` / ``dispute_blob`` refuting a VALID
    verdict on a wrong 4096³ result, and the market's ``refute``), measured on a plain anvil
    through web3: the job settled alone, and as the first item of a batch of 64 (the batch's
    items travel in the dispute's calldata, 256 bytes each). Ape's anvil traces every step, which
    for a transaction of a million gas took longer than its receipt timeout."""
    from web3 import Web3

    from oracle.chain.anvil import start_anvil, stop_anvil, test_accounts
    from oracle.chain.client import ALL_EVENTS, Chain, TxSender
    from oracle.chain.deploy import deploy_with_web3
    from oracle.compute.merkle import chunks_per_row
    from oracle.protocol.dispute_terms import spec_hash_of, terms_of
    from oracle.protocol.params import LOCAL

    fx = dispute_fixtures()
    i, j = int(fx["i"]), int(fx["j"])  # type: ignore[call-overload]
    width = 4096 // chunks_per_row(4096, 4)  # entries per chunk of C
    leaf = i * (4096 // width) + j // width  # the chunk holding C[i][j]
    at = 4 * width * (j // width)
    out: dict[str, int] = {}
    proc, url = start_anvil()
    try:
        deployer, requester, worker, filler, disputer = test_accounts(5)
        oracle = Account.from_key(keccak(text="bench dispute oracle"))
        w3 = Web3(Web3.HTTPProvider(url))
        rec = deploy_with_web3(w3, deployer, [oracle.address], 1, LOCAL, "bench")
        chain = Chain(url, rec, timeout=120)
        m = chain.market.functions
        tx = {
            a.address: TxSender(chain, a, receipt_timeout=120)
            for a in (requester, worker, filler, disputer)
        }
        price = 10**15
        tx[filler.address].send(m.register(), "register", value=3 * 64 * LOCAL.min_bond)

        def post(spec_hash: bytes, count: int) -> tuple[list[int], int]:
            first = int(chain.call("next_job_id"))
            reqs = [(spec_hash, 1_000, ZERO, price, chain.now() + 86_400) for _ in range(count)]
            r = tx[requester.address].send(m.create_jobs(reqs), "post", value=count * price)
            return list(range(first, first + count)), int(r["blockNumber"])

        def attest(
            job: int, who: str, com: bytes, block: int, verdict: int = 1, th: bytes = b""
        ) -> Attestation:
            return Attestation(job, who, com, block, 1_000, verdict, th or keccak(text="t"))

        def committed(spec_hash: bytes, com: bytes) -> tuple[int, bytes, int]:
            """A job posted and committed to by `worker`: (job id, spec tag salt, block)."""
            (job_id,), created = post(spec_hash, 1)
            tx[worker.address].send(m.register(), "register", value=LOCAL.min_bond)
            r = tx[worker.address].send(m.submit_result(job_id, com), "submit")
            return job_id, chain.block_hash(created - 1), int(r["blockNumber"])

        def settled(atts: list[Attestation]) -> SettledBatch:
            """The batch as the market recorded it, signed by the one oracle."""
            sig = sign_settlement(oracle, chain.chain_id, chain.market.address, atts, VALID_UNTIL)
            fn = m.settle([a.as_tuple() for a in atts], VALID_UNTIL, [sig.as_tuple()])
            logs = chain.receipt_events(tx[requester.address].send(fn, "settle", gas=12_000_000))
            head = next(e.args for e in logs if e.name == "BatchSettled")
            items = [(e.name, e.args) for e in logs if e.name in ("JobSettled", "WorkerSlashed")]
            terms = {int(a["job_id"]): (ZERO, price, 1_000) for _, a in items}  # type: ignore[call-overload]
            return SettledBatch.from_logs(head, items, terms)

        for name in ("int8_seeded", "fp32_seeded", "int8_blob"):
            spec_obj, tree, c_row = fx[name][:3]  # type: ignore[index]
            for n in (1, 64):
                com = keccak(bytes.fromhex(worker.address[2:]) + tree.root)
                job_id, salt, block = committed(spec_hash_of(spec_obj), com)
                atts = [attest(job_id, worker.address, com, block)]
                if n > 1:
                    others, _ = post(keccak(text=f"filler {name}"), n - 1)
                    coms = [(o, keccak(text=f"filler {o}")) for o in others]
                    r = tx[filler.address].send(m.submit_results(coms), "submit")
                    atts += [attest(o, filler.address, c, int(r["blockNumber"])) for o, c in coms]
                batch = settled(atts)
                chunk = c_row[at : at + 4 * width]
                common = (batch.args(), 0, terms_of(spec_obj), salt, tree.root, i, j, chunk)
                d = chain.disputes.functions
                fn = (
                    d.dispute_blob(*common, tree.proof(leaf), *fx[name][3])  # type: ignore[index]
                    if name == "int8_blob"
                    else d.dispute_seeded(*common, tree.proof(leaf))
                )
                r = tx[disputer.address].send(fn, "dispute", gas=3_000_000)
                assert [e.name for e in chain.receipt_events(r, ALL_EVENTS)] == ["Refuted"]
                key = f"gas_dispute_{name.replace('_', '_4096_')}" + ("" if n == 1 else "_b64")
                out[key] = int(r["gasUsed"])
                # the slashed oracle bonds again for the next batch
                bond = chain.oracle_set.functions.bond(oracle.address)
                tx[requester.address].send(bond, "bond", value=LOCAL.oracle_bond)
                if n > 1 or name == "int8_blob":
                    continue
                # Overturn: the same result slashed INVALID naming C[i][j + 1] (right, and in
                # the same chunk) as its witness; the worker proves it right.
                job_id, salt, block = committed(spec_hash_of(spec_obj), com)
                named = keccak(text="t")[:16] + i.to_bytes(8, "big") + (j + 1).to_bytes(8, "big")
                batch = settled([attest(job_id, worker.address, com, block, 2, named)])
                fn = d.overturn_seeded(
                    batch.args(), 0, terms_of(spec_obj), salt, tree.root, chunk, tree.proof(leaf)
                )
                r = tx[worker.address].send(fn, "overturn", gas=3_000_000)
                assert [e.name for e in chain.receipt_events(r, ALL_EVENTS)] == ["Overturned"]
                out[f"gas_overturn_{name.replace('_', '_4096_')}"] = int(r["gasUsed"])
                tx[requester.address].send(bond, "bond", value=LOCAL.oracle_bond)
    finally:
        stop_anvil(proc)
    return out


def main() -> dict[str, float]:
    from ape import accounts, chain, networks, project

    console = Console()
    rows: list[tuple[str, int, str]] = []
    out: dict[str, float] = {}
    with networks.parse_network_choice("ethereum:local:foundry"):
        acct = accounts.test_accounts
        deployer, requester = acct[0], acct[1]
        workers = [acct[i] for i in range(2, 10)]
        keys = sorted(
            (Account.from_key(keccak(text=f"bench oracle {i}")) for i in range(3)),
            key=lambda a: int(a.address, 16),
        )
        params = ProtocolParams(
            epoch_length=EPOCH,
            initial_emission=EMISSION,
            halving_epochs=HALVING,
            min_bond=ETHER,
            unbonding_delay=86_400,
            reveal_window=600,
            refund_grace=3_600,
            max_horizon=30 * 86_400,
            challenge_window=3_600,
        )
        token, market, _ = deploy_protocol(
            project,
            deployer,
            [k.address for k in keys],
            1,
            params,
            "ethereum:local:foundry",
            chain.chain_id,
        )
        oracle_set = project.OracleSet.at(market.ORACLES())
        usd = project.MockToken.deploy("Mock USD", "mUSD", sender=deployer)
        market.set_asset_allowed(usd, True, sender=deployer)
        usd.mint(requester, 10**30, sender=deployer)
        usd.approve(market, 2**256 - 1, sender=requester)
        for w in workers:  # each live submission holds min_bond (1 ETH here) at stake
            market.register(sender=w, value=1_000 * ETHER)

        def deadline() -> int:
            return chain.pending_timestamp + 86_400

        counter = iter(range(10**9))

        def spec() -> bytes:
            return keccak(text=f"bench spec {next(counter)}")

        def gas(tx) -> int:
            return int(tx.gas_used)

        # createJob: measured after a first job so the id counter is warm (as on a live market).
        market.create_job(spec(), 1_000, ZERO, 10**15, deadline(), sender=requester, value=10**15)
        g = gas(
            market.create_job(
                spec(), 1_000, ZERO, 10**15, deadline(), sender=requester, value=10**15
            )
        )
        rows.append(("create_job (ETH)", g, "per job"))
        out["gas_create_job_eth"] = g
        g = gas(market.create_job(spec(), 1_000, usd, 10**15, deadline(), sender=requester))
        rows.append(("create_job (ERC-20)", g, "per job"))
        out["gas_create_job_erc20"] = g
        for asset, label in ((ZERO, "ETH"), (usd, "ERC-20")):
            reqs = [(spec(), 1_000, asset, 10**15, deadline()) for _ in range(64)]
            value = 64 * 10**15 if asset == ZERO else 0
            g = gas(market.create_jobs(reqs, sender=requester, value=value)) / 64
            rows.append((f"create_jobs x64 ({label})", round(g), "per job"))
            out[f"gas_create_jobs_b64_{label.lower().replace('-', '')}_per_job"] = round(g)

        def post(n: int) -> list[int]:
            first = market.next_job_id()
            reqs = [(spec(), 1_000, ZERO, 10**15, deadline()) for _ in range(n)]
            market.create_jobs(reqs, sender=requester, value=n * 10**15)
            return list(range(first, first + n))

        def commit(worker, job_id: int) -> bytes:
            return keccak(bytes.fromhex(worker.address[2:]) + keccak(text=f"root {job_id}"))

        ids = post(1 + 64)
        g = gas(market.submit_result(ids[0], commit(workers[0], ids[0]), sender=workers[0]))
        rows.append(("submit_result", g, "per result"))
        out["gas_submit_result"] = g
        g = (
            gas(
                market.submit_results(
                    [(j, commit(workers[1], j)) for j in ids[1:]], sender=workers[1]
                )
            )
            / 64
        )
        rows.append(("submit_results x64", round(g), "per result"))
        out["gas_submit_results_b64_per_result"] = round(g)

        def prepared_batch(n: int) -> list[Attestation]:
            jobs = post(n)
            blocks = []
            for i, j in enumerate(jobs):
                w = workers[i % len(workers)]
                tx = market.submit_result(j, commit(w, j), sender=w)
                blocks.append(tx.block_number)
            return [
                Attestation(
                    j,
                    workers[i % len(workers)].address,
                    commit(workers[i % len(workers)], j),
                    blocks[i],
                    1_000,
                    1,
                    keccak(text=str(j)),
                )
                for i, j in enumerate(jobs)
            ]

        def signed(atts: list[Attestation], signers: int) -> list[tuple[int, int]]:
            return [
                s.as_tuple()
                for s in order_signatures(
                    sign_settlement(k, chain.chain_id, market.address, atts, VALID_UNTIL)
                    for k in keys[:signers]
                )
            ]

        settled: dict[tuple[int, int], SettledBatch] = {}

        def settle_batch(n: int, threshold: int) -> float:
            atts = prepared_batch(n)
            tx = market.settle(
                [a.as_tuple() for a in atts], VALID_UNTIL, signed(atts, threshold), sender=deployer
            )
            assert len(tx.decode_logs(market.JobSettled)) == n
            recorded = settled_batch(market, tx)
            assert recorded is not None
            settled[(n, threshold)] = recorded
            return gas(tx)

        # Warm-up: every worker gets a credited balance and work in this epoch.
        settle_batch(8, 1)
        results: dict[tuple[int, int], float] = {}
        for threshold in (1, 3):
            oracle_set.set_threshold(threshold, sender=deployer)
            for n in (1, 16, 64):
                results[(n, threshold)] = settle_batch(n, threshold)
                rows.append(
                    (
                        f"settle x{n}, threshold {threshold}",
                        round(results[(n, threshold)] / n),
                        "per job",
                    )
                )
        out["gas_settle_per_job_b1_t1"] = round(results[(1, 1)])
        out["gas_settle_per_job_b16_t1"] = round(results[(16, 1)] / 16)
        out["gas_settle_per_job_b64_t1"] = round(results[(64, 1)] / 64)
        out["gas_settle_per_job_b64_t3"] = round(results[(64, 3)] / 64)
        # Extra signer: the same batch in the same state, signed by 1 and by 3 oracles
        # (more signatures than the threshold must all be valid, so both calls succeed).
        oracle_set.set_threshold(1, sender=deployer)
        atts = prepared_batch(64)
        items = [a.as_tuple() for a in atts]
        one = market.settle.estimate_gas_cost(items, VALID_UNTIL, signed(atts, 1), sender=deployer)
        three = market.settle.estimate_gas_cost(
            items, VALID_UNTIL, signed(atts, 3), sender=deployer
        )
        out["gas_extra_signer"] = round((three - one) / 2)
        rows.append(("extra signer (same batch of 64)", out["gas_extra_signer"], "per signature"))

        e0 = market.current_epoch()  # the epoch of the batches above
        # Finalize: the batches above, once their challenge window is over. The first pays
        # the workers' credited slots from zero; the 64-item one is measured after it.
        chain.pending_timestamp = max(b.final_at for b in settled.values())
        for n in (1, 16):
            g = gas(market.finalize(*settled[(n, 1)].args(), sender=deployer))
            out[f"gas_finalize_per_job_b{n}"] = round(g / n)
            rows.append((f"finalize x{n}", round(g / n), "per job"))
        g = gas(market.finalize(*settled[(64, 1)].args(), sender=deployer))
        out["gas_finalize_per_job_b64"] = round(g / 64)
        rows.append(("finalize x64", out["gas_finalize_per_job_b64"], "per job"))
        out["gas_settle_and_finalize_per_job_b64_t1"] = (
            out["gas_settle_per_job_b64_t1"] + out["gas_finalize_per_job_b64"]
        )
        rows.append(
            ("settle + finalize x64", out["gas_settle_and_finalize_per_job_b64_t1"], "per job")
        )

        # Claim: the worker already holds tokens from an earlier epoch's claim.
        w = workers[0]
        chain.pending_timestamp += EPOCH
        market.claim([e0], sender=w)
        oracle_set.set_threshold(1, sender=deployer)
        settle_batch(8, 1)
        e1 = market.current_epoch()
        chain.pending_timestamp += EPOCH + 3_600  # the epoch ended and its batches are final
        g = gas(market.claim([e1], sender=w))
        rows.append(("claim one epoch", g, "per claim"))
        out["gas_claim_epoch"] = g
        assert token.balanceOf(w) > 0

        g = gas(market.withdraw(ZERO, sender=w))
        rows.append(("withdraw (ETH)", g, "per call"))
        out["gas_withdraw_eth"] = g

        d = dispute_gas()
        for name in ("int8_seeded", "fp32_seeded", "int8_blob"):
            for n in (1, 64):
                key = f"gas_dispute_{name.replace('_', '_4096_')}" + ("" if n == 1 else "_b64")
                out[key] = d[key]
                label = f"dispute, {name.replace('_', ' ')} 4096³, batch of {n}"
                rows.append((label, d[key], "per tx"))
        for name in ("int8_seeded", "fp32_seeded"):
            key = f"gas_overturn_{name.replace('_', '_4096_')}"
            out[key] = d[key]
            rows.append((f"overturn (INVALID), {name.replace('_', ' ')} 4096³", d[key], "per tx"))

        e = entry_check_gas(project, deployer)
        rows.append(("entry check, int8 4096³ blob job (not yet a dispute)", e["gas"], "per tx"))
        rows.append(("  its calldata floor (EIP-7623)", e["floor"], f"{e['calldata_bytes']:,} B"))
        rows.append(("  the same under Cancun's rules", e["gas_cancun"], "per tx"))
        rows.append(("  int8 dot product, execution", e["dot_execution_per_mac"], "per MAC"))
        out["gas_entry_check_int8_4096_blob"] = e["gas"]
        out["gas_entry_check_int8_4096_blob_calldata_floor"] = e["floor"]
        out["gas_entry_check_int8_4096_blob_cancun"] = e["gas_cancun"]
        out["gas_dot_int8_per_mac"] = e["dot_execution_per_mac"]
        rows.append(("entry check, int8 4096³ seeded job", e["seeded"], "per tx"))
        rows.append(("  the same under Cancun's rules", e["seeded_cancun"], "per tx"))
        out["gas_entry_check_int8_4096_seeded"] = e["seeded"]
        out["gas_entry_check_int8_4096_seeded_cancun"] = e["seeded_cancun"]
        rows.append(("entry check, fp32 4096³ seeded job", e["fp32_seeded"], "per tx"))
        rows.append(("  the same under Cancun's rules", e["fp32_seeded_cancun"], "per tx"))
        out["gas_entry_check_fp32_4096_seeded"] = e["fp32_seeded"]
        out["gas_entry_check_fp32_4096_seeded_cancun"] = e["fp32_seeded_cancun"]

    table = Table(title="JobMarket gas on anvil (receipt gasUsed)")
    table.add_column("operation")
    table.add_column("gas", justify="right")
    table.add_column("unit")
    for name, g, unit in rows:
        table.add_row(name, f"{g:,}", unit)
    console.print(table)
    merge_results(out)
    return out


if __name__ == "__main__":
    main()
