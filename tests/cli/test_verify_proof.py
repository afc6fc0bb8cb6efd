"""`grey verify-proof FILE`: a task's TEE proof checked offline, with no server; any byte of
the result, the receipt, the quote or the nonce flipped, or an untrusted root, fails it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from runtime.cli import app
from runtime.execution.tee.roots import ROOT_CERT_FILE, SimulationRoot
from runtime.store import Store
from tests.execution.tee.conftest import make_node, sealed_proof


@pytest.fixture
def proof_file(tmp_path: Path) -> tuple[Path, Path]:
    """A proof file and the PEM of the root its node's platform is certified by."""
    root = SimulationRoot.load_or_create(tmp_path / "tee")
    with Store.open(f"sqlite:///{tmp_path / 'grey.db'}") as store:
        proof = sealed_proof(make_node(root, store))
    path = tmp_path / "task.proof"
    path.write_bytes(proof.to_bytes())
    return path, tmp_path / "tee" / ROOT_CERT_FILE


def _verify(path: Path, root: Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["verify-proof", str(path), "--root", str(root)])
    return result.exit_code, result.output


def test_a_proof_verifies_offline_against_the_given_root(proof_file) -> None:
    path, root = proof_file
    code, output = _verify(path, root)
    assert code == 0, output
    assert "VALID" in output and "sgx-sim" in output and "simulation mode" in output


def test_the_default_root_is_the_local_simulation_root(proof_file, monkeypatch) -> None:
    path, root = proof_file
    monkeypatch.setenv("GREY_TEE_DIR", str(root.parent))
    monkeypatch.delenv("GREY_TEE_TRUSTED_ROOTS", raising=False)
    result = CliRunner().invoke(app, ["verify-proof", str(path)])
    assert result.exit_code == 0, result.output


def _region(text: str, field: str) -> range:
    """Where a top-level field's value sits in the proof file (indent=1, sorted keys)."""
    match = re.search(rf'^ "{field}": ', text, flags=re.MULTILINE)
    assert match is not None
    end = re.compile(r'^ "', flags=re.MULTILINE).search(text, match.end())
    return range(match.end(), (end.start() if end else len(text)) - 2)


def test_flipping_any_byte_of_result_receipt_quote_or_nonce_fails(proof_file, tmp_path: Path) -> None:
    path, root = proof_file
    raw = path.read_bytes()
    text = raw.decode()
    assert text.isascii()
    tampered = tmp_path / "tampered.proof"
    for field in ("result", "nonce", "quote", "receipt"):
        region = _region(text, field)  # a dozen bytes spread over each (tests/execution/tee: all)
        for index in region[:: max(1, len(region) // 12)]:
            flipped = bytearray(raw)
            flipped[index] ^= 0x01
            tampered.write_bytes(bytes(flipped))
            code, output = _verify(tampered, root)
            assert code == 1, f"{field} byte {index}: {output}"
            assert "INVALID" in output


def test_a_root_the_verifier_does_not_trust_fails_it(proof_file, tmp_path: Path) -> None:
    path, _ = proof_file
    other = SimulationRoot.load_or_create(tmp_path / "other")
    code, output = _verify(path, tmp_path / "other" / ROOT_CERT_FILE)
    assert code == 1 and "trusted root" in output and other.cert_pem()


def test_a_file_that_is_no_proof_fails(tmp_path: Path, proof_file) -> None:
    _, root = proof_file
    junk = tmp_path / "junk.json"
    junk.write_text(json.dumps({"hello": "world"}))
    code, output = _verify(junk, root)
    assert code == 1 and "not a proof" in output
