"""`grey serve` mounts the dashboard at /dashboard on Grey Distributed's REST listener."""

from __future__ import annotations

import dataclasses

from starlette.testclient import TestClient

from runtime.gateway.app import DASHBOARD_PATH, Platform, _ByPort
from runtime.gateway.dashboard.app import CSP
from runtime.services import Services


def test_the_dashboard_shares_the_grey_rest_listener(services: Services) -> None:
    platform = Platform.build(services)
    listener = platform.dashboard_listener()
    assert listener is not None and (listener.api, listener.transport) == ("grey", "REST")
    apps = platform.rest_apps()
    assert set(apps[listener.port]) == {"", DASHBOARD_PATH}
    client = TestClient(_ByPort({listener.port: apps[listener.port]}))
    page = client.get("/dashboard/")
    assert page.status_code == 200 and page.headers["content-security-policy"] == CSP
    assert 'id="api-key"' in page.text
    assert client.get("/dashboard/api/tasks").status_code == 401
    assert client.get("/v1/tasks").json()["error"]["code"] == "unauthorized"  # still the API


def test_no_dashboard_where_an_api_already_answers_at_its_path(services: Services) -> None:
    settings = dataclasses.replace(
        services.settings,
        api_ports={"openmcp_rest": services.settings.rest_port},
        api_base_paths={"openmcp": DASHBOARD_PATH},
    )
    platform = Platform.build(dataclasses.replace(services, settings=settings))
    assert platform.dashboard_listener() is None
    assert platform.rest_apps()[settings.rest_port][DASHBOARD_PATH] is platform.gateways["openmcp"].rest
