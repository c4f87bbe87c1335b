"""Mock agencies under test: the standalone app over ASGI (no database), built with given settings."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from app.config import Settings
from app.mock_agencies import MockAgencies, create_mock_agencies_app
from tests.service_keys import service_identity

AgencyClientFactory = Callable[..., AbstractAsyncContextManager[tuple[httpx.AsyncClient, MockAgencies]]]


def mock_settings(**overrides: Any) -> Settings:
    """The mock customs verifies signed CEB621s with the test service identity (``tests/packages.py`` signs)."""
    certificate = {"mock_customs_certificate_path": service_identity().certificate_path}
    return Settings(_env_file=None, **(certificate | overrides))  # type: ignore[call-arg]


@pytest.fixture
def agencies_client() -> AgencyClientFactory:
    """``async with agencies_client(callback_transport=…, mock_failure_rate=…) as (http, agencies)``."""

    @asynccontextmanager
    async def build(
        callback_transport: httpx.AsyncBaseTransport | None = None, **overrides: Any
    ) -> AsyncIterator[tuple[httpx.AsyncClient, MockAgencies]]:
        app = create_mock_agencies_app(mock_settings(**overrides), callback_transport=callback_transport)
        async with (
            LifespanManager(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://agencies.test") as http,
        ):
            yield http, app.state.mock_agencies

    return build
