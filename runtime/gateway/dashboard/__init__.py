"""The web dashboard `grey serve` mounts at /dashboard/ (issue #16)."""
