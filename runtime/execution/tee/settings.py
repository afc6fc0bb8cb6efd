"""Settings of the TEE pool and its verifiers, from the environment.

- `GREY_TEE_DIR` (default `$GREY_HOME/tee`, i.e. `.grey/tee`): where the simulation root
  is kept (`sim-root.pem`, `sim-root.key`).
- `GREY_TEE_TRUSTED_ROOTS`: comma-separated PEM files of the simulation roots verifiers
  trust (default: `$GREY_TEE_DIR/sim-root.pem`, the local one).
- `GREY_TEE_ATTESTATION_TTL_SECONDS` (default 3600): how long a node's attestation is
  valid; nodes renew at half of it.
- `GREY_TEE_THREADS` (default 2): threads of the in-process tee pool `grey serve` runs
  with the embedded broker (0: none).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def _default_dir() -> Path:
    return Path(os.environ.get("GREY_HOME", ".grey")) / "tee"


@dataclass(frozen=True)
class TeeSettings:
    directory: Path = field(default_factory=_default_dir)
    trusted_roots: tuple[Path, ...] = ()  # empty: the local simulation root
    attestation_ttl_seconds: float = 3600.0
    threads: int = 2

    @classmethod
    def from_env(cls) -> TeeSettings:
        env = os.environ
        directory = Path(env["GREY_TEE_DIR"]) if env.get("GREY_TEE_DIR", "").strip() else _default_dir()
        roots = tuple(Path(p.strip()) for p in env.get("GREY_TEE_TRUSTED_ROOTS", "").split(",") if p.strip())
        return cls(
            directory=directory,
            trusted_roots=roots,
            attestation_ttl_seconds=float(env.get("GREY_TEE_ATTESTATION_TTL_SECONDS", "3600")),
            threads=int(env.get("GREY_TEE_THREADS", "2")),
        )

    def root_files(self) -> tuple[Path, ...]:
        """The PEM files of the roots to trust."""
        from runtime.execution.tee.roots import ROOT_CERT_FILE

        return self.trusted_roots or (self.directory / ROOT_CERT_FILE,)
