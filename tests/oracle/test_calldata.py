"""``calldata`` (eth_abi straight) is byte-identical to web3's ``build_transaction`` data and
turns a value that does not fit its ABI type into a one-line ChainError."""

from __future__ import annotations

import pytest
from eth_account import Account
from web3 import Web3

from oracle.chain.client import ZERO_ADDRESS, artifact, calldata
from oracle.exceptions import ChainError

MARKET = Web3().eth.contract(address="0x" + "12" * 20, abi=artifact("JobMarket")["abi"])
WORKER = Account.from_key(b"\x01" * 32).address
TX = {
    "from": WORKER,
    "nonce": 0,
    "gas": 1_000_000,
    "chainId": 31337,
    "maxFeePerGas": 2 * 10**9,
    "maxPriorityFeePerGas": 10**9,
}


def _web3_data(fn) -> bytes:
    return bytes.fromhex(fn.build_transaction(TX)["data"][2:])


@pytest.mark.parametrize("n", [0, 1, 64])
def test_settle_and_create_jobs__same_bytes_as_web3(n: int) -> None:
    items = [
        (i + 1, WORKER, bytes([i]) * 32, 7 + i, 1024 + i, i % 2, bytes([255 - i]) * 32)
        for i in range(n)
    ]
    sigs = [(2**255 - 19 - i, 2**200 + i) for i in range(3)]
    jobs = [(bytes([i]) * 32, 4096, ZERO_ADDRESS, 10**12 + i, 2**40) for i in range(n)]
    for fn in (
        MARKET.functions.settle(items, 2**40, sigs),
        MARKET.functions.create_jobs(jobs),
        MARKET.functions.submit_results([(i, bytes([i]) * 32) for i in range(n)]),
        MARKET.functions.register(),
        MARKET.functions.withdraw(ZERO_ADDRESS),
    ):
        assert calldata(fn) == _web3_data(fn)


def test_value_outside_its_type__chain_error_names_the_function() -> None:
    fn = MARKET.functions.submit_results([(1, b"\x00" * 32)])
    fn.args = ([(-1, b"\x00" * 32)],)  # past web3's own check: what eth_abi refuses
    with pytest.raises(ChainError, match="encode submit_results"):
        calldata(fn)
    fn.args = ([(1, b"\x00" * 31)],)
    with pytest.raises(ChainError, match="encode submit_results"):
        calldata(fn)
