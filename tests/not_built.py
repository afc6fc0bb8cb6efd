"""Operations in the contract whose handler is not built yet: they answer 501 by design.

The README lists them ("Not built yet"); Schemathesis skips them (a 501 is a server error
to it); tests/contract checks each really answers 501. None is left: the TEE proof,
attestation and isolation operations are built (runtime/execution/tee, handlers/grey).
"""

NOT_BUILT: tuple[str, ...] = ()

NOT_BUILT_BY_API: dict[str, tuple[str, ...]] = {"grey": NOT_BUILT}
"""Per API (runtime/gateway/contracts.py): the operations that answer 501 by design."""
