"""The `tee` pool's trusted execution, in simulation mode (see docs/runtime.md, "TEE pool").

- `quote.py`: SGX DCAP v3 quotes, byte for byte;
- `roots.py`: the declared simulation root (stands in for Intel's) and trusted roots;
- `attester.py`: the `Attester` interface and the simulated SGX attester;
- `measurement.py`: the code measurement (MRENCLAVE) of a worker;
- `receipts.py`: in-toto Statements in DSSE envelopes, signed by the node key;
- `proof.py`: the self-contained proof file of a task; `verify.py`: offline verification;
- `node.py`: one TEE worker node (its key, attestation, receipts);
- `service.py`: what the gateway asks of TEE nodes (fresh attestations, verdicts).

Nothing here claims hardware: platform `sgx-sim`, debug enclaves, a simulation root that
verifiers trust only when configured to.
"""
