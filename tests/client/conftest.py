"""The gateway fixtures of tests/api."""

from tests.api.conftest import database_url, key, platform, services  # noqa: F401
