"""Deploy fixtures: the integration suite's broker (a real mosquitto per test)."""

from tests.integration.conftest import broker  # noqa: F401 - the fixture, shared
