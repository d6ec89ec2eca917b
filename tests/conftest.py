"""Shared fixtures: named actors, the deployed protocol, and factories with defaults.

Session-scoped deployments are cheap to share: Ape snapshots the chain before each
test and reverts it afterwards, so every test starts from the same fresh protocol.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest
from eth_account import Account
from eth_utils import keccak

from oracle.chain.ape_batches import settled_batch
from oracle.chain.ape_deploy import deploy_protocol as deploy_wired
from oracle.protocol.attestation import (
    Attestation,
    CompactSignature,
    order_signatures,
    sign_settlement,
)
from oracle.protocol.commitment import commitment
from oracle.protocol.params import ProtocolParams
from oracle.protocol.settled import SettledBatch
from tests.utils.constants import (
    CHALLENGE_WINDOW,
    EPOCH_LENGTH,
    ETHER,
    HALVING_EPOCHS,
    INITIAL_EMISSION,
    MAX_HORIZON,
    MIN_BOND,
    N_ORACLES,
    ORACLE_BOND,
    REFUND_GRACE,
    REVEAL_WINDOW,
    UNBONDING_DELAY,
    VALID,
    VALID_UNTIL,
    ZERO_ADDRESS,
)

#: The protocol parameters every test deployment uses (tests/utils/constants.py).
TEST_PARAMS = ProtocolParams(
    epoch_length=EPOCH_LENGTH,
    initial_emission=INITIAL_EMISSION,
    halving_epochs=HALVING_EPOCHS,
    min_bond=MIN_BOND,
    unbonding_delay=UNBONDING_DELAY,
    reveal_window=REVEAL_WINDOW,
    refund_grace=REFUND_GRACE,
    max_horizon=MAX_HORIZON,
    challenge_window=CHALLENGE_WINDOW,
    oracle_bond=ORACLE_BOND,
)


@pytest.fixture(scope="session")
def deployer(accounts):
    return accounts[0]


@pytest.fixture(scope="session")
def requester(accounts):
    return accounts[1]


@pytest.fixture(scope="session")
def other_requester(accounts):
    return accounts[2]


@pytest.fixture(scope="session")
def workers(accounts):
    return [accounts[i] for i in range(3, 11)]


@pytest.fixture(scope="session")
def worker(workers):
    return workers[0]


@pytest.fixture(scope="session")
def stranger(accounts):
    return accounts[11]


@pytest.fixture(scope="session")
def oracle_keys():
    """Oracle signing keys: off-chain signers only, they never send transactions."""
    keys = [Account.from_key(keccak(text=f"pouw test oracle {i}")) for i in range(N_ORACLES + 1)]
    return sorted(keys, key=lambda a: int(a.address, 16))


@pytest.fixture(scope="session")
def oracles(oracle_keys):
    """The initial oracle set (all but the last key, which stays an outsider)."""
    return oracle_keys[:N_ORACLES]


@pytest.fixture(scope="session")
def outsider_key(oracle_keys):
    return oracle_keys[N_ORACLES]


@pytest.fixture(scope="session")
def deploy_protocol(project, deployer, chain):
    """deploy(oracles, threshold) -> (token, market), wired exactly as `ape run deploy` does."""

    def deploy(oracles: Sequence[str], threshold: int = 1):
        token, market, _ = deploy_wired(
            project,
            deployer,
            list(oracles),
            threshold,
            TEST_PARAMS,
            "ethereum:local:test",
            chain.chain_id,
        )
        return token, market

    return deploy


@pytest.fixture(scope="session")
def protocol(deploy_protocol, oracles):
    return deploy_protocol([o.address for o in oracles], threshold=1)


@pytest.fixture(scope="session")
def token(protocol):
    return protocol[0]


@pytest.fixture(scope="session")
def oracle_set(project, market):
    """The market's OracleSet: membership, threshold and oracle bonds."""
    return project.OracleSet.at(market.ORACLES())


@pytest.fixture(scope="session")
def disputes(project, market):
    """The market's dispute contract: refutes VALID matmul verdicts by one entry."""
    return project.Disputes.at(market.DISPUTES())


@pytest.fixture(scope="session")
def market(protocol):
    return protocol[1]


@pytest.fixture(scope="session")
def usd(project, deployer, market, requester, other_requester):
    """An allow-listed ERC-20 escrow asset, funded and approved for both requesters."""
    t = project.MockToken.deploy("Mock USD", "mUSD", sender=deployer)
    market.set_asset_allowed(t, True, sender=deployer)
    for r in (requester, other_requester):
        t.mint(r, 1_000_000 * ETHER, sender=deployer)
        t.approve(market, 2**256 - 1, sender=r)
    return t


@pytest.fixture
def spec_hash() -> Callable[[int], bytes]:
    return lambda n=0: keccak(text=f"spec {n}")


@pytest.fixture
def create_job(chain, market, requester, spec_hash):
    """Post a job; ETH by default. Returns the job id."""

    def create(
        sender=None,
        amount: int = ETHER // 10,
        units: int = 2 * 64**3,
        deadline: int | None = None,
        asset=ZERO_ADDRESS,
        spec: bytes | None = None,
    ) -> int:
        sender = sender or requester
        deadline = deadline or chain.pending_timestamp + 3_600
        value = amount if str(asset) == ZERO_ADDRESS else 0
        tx = market.create_job(
            spec or spec_hash(market.next_job_id()),
            units,
            asset,
            amount,
            deadline,
            sender=sender,
            value=value,
        )
        return tx.decode_logs(market.JobCreated)[0].job_id

    return create


@pytest.fixture
def bond(market):
    def bond_(worker, amount: int = MIN_BOND):
        return market.register(sender=worker, value=amount)

    return bond_


def commitment_of(worker, root: bytes) -> bytes:
    """keccak256(worker address ‖ result root), the value workers commit to."""
    return commitment(str(getattr(worker, "address", worker)), root)


@pytest.fixture
def submit(market):
    """Commit a result for a job; returns the commitment."""

    def submit_(worker, job_id: int, root: bytes | None = None) -> bytes:
        c = commitment_of(worker.address, root or keccak(text=f"root {job_id} {worker.address}"))
        market.submit_result(job_id, c, sender=worker)
        return c

    return submit_


@pytest.fixture
def live_job(worker, create_job, bond, submit):
    """An open ETH job with one live submission by `worker`."""
    job_id = create_job()
    bond(worker)
    submit(worker, job_id)
    return job_id


@pytest.fixture
def attest(market):
    """Build an attestation for a job's live submission by `worker`."""

    def attest_(
        job_id: int,
        worker,
        verdict=VALID,
        commitment: bytes | None = None,
        units: int | None = None,
        transcript: bytes | None = None,
        block: int | None = None,
    ) -> Attestation:
        address = getattr(worker, "address", worker)
        live = market.submissions(job_id, address)
        return Attestation(
            job_id=job_id,
            worker=address,
            commitment=commitment or bytes(live.commitment),
            submission_block=int(live.block_number) if block is None else block,
            work_units=units if units is not None else market.job(job_id).work_units,
            verdict=verdict,
            transcript_hash=transcript or keccak(text=f"transcript {job_id}"),
        )

    return attest_


@pytest.fixture
def sign(chain, market, oracles):
    """Sign a batch with the given oracle keys (default: the first), ordered for the contract."""

    def sign_(
        attestations: Sequence[Attestation],
        keys=None,
        chain_id=None,
        market_address=None,
        ordered: bool = True,
        valid_until: int | None = None,
    ) -> list[CompactSignature]:
        keys = keys if keys is not None else oracles[:1]
        until = valid_until if valid_until is not None else VALID_UNTIL
        sigs = [
            sign_settlement(
                k,
                chain_id or chain.chain_id,
                market_address or market.address,
                attestations,
                until,
            )
            for k in keys
        ]
        return order_signatures(sigs) if ordered else sigs

    return sign_


@pytest.fixture
def settle(chain, market, sign, stranger):
    """Sign and relay a batch (a stranger relays: settlement is permissionless)."""

    def settle_(
        attestations: Sequence[Attestation], keys=None, sender=None, valid_until=None, **kw
    ):
        until = valid_until if valid_until is not None else VALID_UNTIL
        sigs = sign(attestations, keys=keys, valid_until=until)
        return market.settle(
            [a.as_tuple() for a in attestations],
            until,
            [s.as_tuple() for s in sigs],
            sender=sender or stranger,
            **kw,
        )

    return settle_


@pytest.fixture
def finalize(chain, market, stranger):
    """finalize(settle receipt or batch): wait out its challenge window, then pay it."""

    def finalize_(tx_or_batch, sender=None, wait: bool = True):
        batch = (
            tx_or_batch
            if isinstance(tx_or_batch, SettledBatch)
            else settled_batch(market, tx_or_batch)
        )
        assert batch is not None, "the settle skipped every item"
        if wait and chain.pending_timestamp < batch.final_at:
            chain.pending_timestamp = batch.final_at
        return market.finalize(*batch.args(), sender=sender or stranger)

    return finalize_


@pytest.fixture
def settle_final(settle, finalize):
    """settle, then finalize the batch (the money moves); returns the settle receipt."""

    def settle_final_(attestations, **kw):
        tx = settle(attestations, **kw)
        finalize(tx)
        return tx

    return settle_final_


# ---------------------------------------------------------------------------
# Auditor fixtures (appended): a ledger of everything money or job state lives
# in, hostile contracts, and relaying helpers.
# ---------------------------------------------------------------------------

# A failed transaction is still mined and charged gas; no test moves less than this.
GAS_SLACK = 10**16


class Ledger:
    """A snapshot of balances, credits, bonds, jobs and epoch work.

    `assert_unchanged()` after a reverted call proves no state and no funds moved; the
    only tolerance is the gas a sender pays for its own failed transaction.
    """

    def __init__(self, read: Callable[[], dict], eoas: set[str]):
        self._read = read
        self._eoas = eoas
        self.before = read()

    def changes(self) -> dict:
        after = self._read()
        return {k: (v, after[k]) for k, v in self.before.items() if after[k] != v}

    def assert_unchanged(self) -> None:
        for key, (old, new) in self.changes().items():
            if key[0] == "eth" and key[1] in self._eoas:
                assert 0 <= old - new < GAS_SLACK, f"{key}: {old} -> {new}"
            else:
                raise AssertionError(f"{key} changed: {old} -> {new}")


@pytest.fixture
def ledger(chain, market, token, usd, requester, other_requester, workers, stranger):
    """`ledger(jobs=[...], accounts=[...])` snapshots the state a bad call must not move."""

    def snapshot(jobs: Sequence[int] = (), accounts: Sequence = ()) -> Ledger:
        people = [requester, other_requester, *workers[:2], stranger, *accounts]
        addresses = list(dict.fromkeys(str(getattr(p, "address", p)) for p in people))
        workers_ = [w for w in addresses if w not in (str(requester), str(other_requester))]

        epoch = market.current_epoch()

        def read() -> dict:
            state: dict = {
                ("eth", str(market.address)): chain.provider.get_balance(market.address),
                ("usd", str(market.address)): usd.balanceOf(market),
                ("next_job_id",): market.next_job_id(),
                ("next_batch_id",): market.next_batch_id(),
                ("pending_eth",): market.pending(ZERO_ADDRESS),
                ("pending_usd",): market.pending(usd),
                ("work_supply",): token.totalSupply(),
            }
            state["epoch_total_work", epoch] = market.epoch_total_work(epoch)
            for a in addresses:
                state["eth", a] = chain.provider.get_balance(a)
                state["usd", a] = usd.balanceOf(a)
                state["credited_eth", a] = market.credited(a, ZERO_ADDRESS)
                state["credited_usd", a] = market.credited(a, usd)
            for w in workers_:
                state["bond", w] = market.bonds(w)
                state["unbonding_at", w] = market.unbonding_at(w)
                state["epoch_work", epoch, w] = market.epoch_work(epoch, w)
            for j in jobs:
                state["job", j] = tuple(market.job(j))
                for w in workers_:
                    state["submission", j, w] = tuple(market.submissions(j, w))
            return state

        return Ledger(read, {a for a in addresses if not chain.provider.get_code(a)})

    return snapshot


@pytest.fixture
def fee_token(project, deployer, market, requester):
    """A fee-on-transfer ERC-20, allow-listed, funded and approved for the requester."""
    t = project.MockFeeToken.deploy(sender=deployer)
    market.set_asset_allowed(t, True, sender=deployer)
    t.mint(requester, 1_000 * ETHER, sender=deployer)
    t.approve(market, 2**256 - 1, sender=requester)
    return t


@pytest.fixture
def reentrant_worker(project, deployer, market):
    """A hostile worker contract that calls back into the market when paid ETH."""
    return project.ReentrantWorker.deploy(market, sender=deployer)


@pytest.fixture
def relay(chain, market, stranger):
    """Relay already-made signatures for a batch, exactly as given (``valid_until`` must be
    the one they signed; both default to VALID_UNTIL)."""

    def relay_(
        attestations: Sequence[Attestation], signatures: Sequence, sender=None, valid_until=None
    ):
        return market.settle(
            [a.as_tuple() for a in attestations],
            valid_until if valid_until is not None else VALID_UNTIL,
            [s if isinstance(s, tuple) else s.as_tuple() for s in signatures],
            sender=sender or stranger,
        )

    return relay_


@pytest.fixture(autouse=True)
def _release_traced_receipts(request, chain):
    """Under `--coverage`/`--gas`, Ape keeps every traced receipt of the session in memory
    (hundreds of MB per test on anvil: the whole suite grew past 20 GB). Coverage and gas are
    counted when a receipt is captured, so the receipts of earlier tests can be dropped."""
    yield
    if not (
        request.config.getoption("--coverage", default=False)
        or request.config.getoption("--gas", default=False)
    ):
        return
    runner = request.config.pluginmanager.get_plugin("ape-test")
    if runner is not None:
        runner.receipt_capture.receipt_map.clear()
    history = chain.history
    history._hash_to_receipt_map.clear()
    type(history)._account_history_cache.clear()
