"""The committed ABIs and bytecode in oracle/abi/ equal the compiled contracts."""

from __future__ import annotations

import pytest

from oracle.chain.client import artifact


@pytest.mark.parametrize("name", ["JobMarket", "WorkToken"])
def test_committed_artifact__equals_the_compiled_build(project, name):
    ct = getattr(project, name).contract_type
    compiled_abi = [a.model_dump(mode="json", by_alias=True, exclude_none=True) for a in ct.abi]
    committed = artifact(name)
    assert _norm(committed["abi"]) == _norm(compiled_abi), "run `make abi`"
    assert committed["bytecode"] == ct.deployment_bytecode.bytecode, "run `make abi`"


def _norm(abi):
    import json

    return sorted(json.dumps(item, sort_keys=True) for item in abi)
