"""The gateway fixtures of tests/api."""

from tests.gateway.conftest import database_url, key, platform, services  # noqa: F401
