"""The demo page's defences against other web pages the user's browser opens: a foreign Host
(DNS rebinding) on any route, and state-changing requests without the page's header or with a
foreign Origin (cross-site requests)."""

import socket

import pytest

pytest.importorskip("starlette", reason="the demo extra is not installed: pip install -e .[demo]")
pytest.importorskip("httpx", reason="starlette's TestClient needs httpx: pip install -e .[test]")

from api_helpers import HOST, page_client, png_bytes  # noqa: E402

from alphafree_d2.app import REQUEST_HEADER, DemoModel, allowed_hosts, create_app  # noqa: E402
from alphafree_d2.app.guard import RequestGuard  # noqa: E402
from alphafree_d2.utils.testing import random_image  # noqa: E402

ROUTES = [
    ("GET", "/"),
    ("GET", "/static/app.js"),
    ("GET", "/api/info"),
    ("GET", "/api/examples/chelsea"),
    ("GET", "/api/results/x/alpha_0.png"),
    ("GET", "/api/photos/x/image.png"),
    ("POST", "/api/predict?example=chelsea"),
    ("POST", "/api/photos?example=chelsea"),
    ("POST", "/api/photos/x/auto-trimap?model=A"),
]


class Counting:
    def __init__(self):
        self.calls = 0

    def __call__(self, image):
        import numpy as np

        self.calls += 1
        return np.zeros(image.shape[:2], np.float32)


@pytest.fixture
def guarded():
    """An app served on 127.0.0.1:7860 (Host check with the port) and its model's call count."""
    from alphafree_d2.app import builtin_examples

    model = Counting()
    app = create_app(
        [DemoModel("A", model)], builtin_examples(), allowed_hosts=allowed_hosts("127.0.0.1", 7860)
    )
    with page_client(app) as client:
        yield client, model


@pytest.mark.parametrize("method, route", ROUTES)
@pytest.mark.parametrize(
    "host", ["attacker.test:7860", "attacker.test", "127.0.0.1:7861", "127.0.0.1.attacker.test"]
)
def test_a_foreign_host_is_refused_on_every_route(guarded, method, route, host):
    client, model = guarded
    response = client.request(method, route, headers={"host": host})
    assert response.status_code == 421
    assert response.json()["error"].startswith(f"Host {host!r} is not an address of this page")
    assert model.calls == 0


@pytest.mark.parametrize(
    "host", ["127.0.0.1:7860", "localhost:7860", "[::1]:7860", "LOCALHOST:7860"]
)
def test_the_served_addresses_are_accepted(guarded, host):
    client, _ = guarded
    assert client.get("/api/info", headers={"host": host}).status_code == 200
    response = client.post(
        "/api/predict",
        params={"example": "chelsea"},
        headers={"host": host, "origin": f"http://{host}"},
    )
    assert response.status_code == 200, response.text


def test_post_needs_the_page_header(guarded):
    client, model = guarded
    for value in ("", "0", "yes"):
        headers = {REQUEST_HEADER: value}
        response = client.post("/api/predict", params={"example": "chelsea"}, headers=headers)
        assert response.status_code == 403
        assert f"needs the header {REQUEST_HEADER}: 1" in response.json()["error"]
    # what a no-cors fetch or a form of another site sends: no custom header at all
    from starlette.testclient import TestClient

    with TestClient(client.app, base_url=f"http://{HOST}") as bare:
        response = bare.post(
            "/api/predict", params={"filename": "x.png"}, content=png_bytes(random_image(8, 8))
        )
        assert response.status_code == 403
        assert bare.get("/api/info").status_code == 200  # reading needs no header
    assert model.calls == 0


@pytest.mark.parametrize(
    "origin",
    [
        "http://attacker.test",
        "http://attacker.test:7860",
        "null",
        "https://127.0.0.1:7860",
        "http://127.0.0.1:9",
    ],
)
def test_a_foreign_origin_is_refused_even_with_the_header(guarded, origin):
    client, model = guarded
    response = client.post(
        "/api/predict", params={"example": "chelsea"}, headers={"origin": origin}
    )
    assert response.status_code == 403
    assert response.json()["error"].startswith(f"cross-site request refused: Origin {origin!r}")
    assert model.calls == 0


def test_repeated_host_or_origin_headers_are_refused():
    guard = RequestGuard(None, ["127.0.0.1:7860"])
    assert guard.check("GET", {"host": ["127.0.0.1:7860", "attacker.test"]})[0] == 400
    assert guard.check("GET", {"host": ["127.0.0.1:7860"]}) is None
    origins = ["http://127.0.0.1:7860", "http://attacker.test"]
    headers = {"host": ["127.0.0.1:7860"], "origin": origins, REQUEST_HEADER.lower(): ["1"]}
    assert guard.check("POST", headers)[0] == 400


def test_the_helpers_header_is_the_pages():
    import api_helpers

    assert api_helpers.REQUEST_HEADER == REQUEST_HEADER


def test_allowed_hosts():
    assert allowed_hosts("127.0.0.1", 7860) == {
        "127.0.0.1:7860",
        "localhost:7860",
        "[::1]:7860",
    }
    assert "[fe80::1]:8000" in allowed_hosts("fe80::1", 8000)
    assert "192.168.1.5:7860" in allowed_hosts("192.168.1.5", 7860)
    assert {"localhost", "localhost:80"} <= allowed_hosts("127.0.0.1", 80)
    assert "photos.example.org:7860" in allowed_hosts("127.0.0.1", 7860, ["Photos.Example.org"])
    everywhere = allowed_hosts("0.0.0.0", 7860)
    assert f"{socket.gethostname().lower()}:7860" in everywhere
    assert "0.0.0.0:7860" in everywhere  # the address the tool prints
    assert "attacker.test:7860" not in everywhere


def test_without_allowed_hosts_the_loopback_names_on_any_port_are_served():
    app = create_app([DemoModel("A", Counting())])
    with page_client(app) as client:
        assert client.get("/api/info", headers={"host": "localhost:1234"}).status_code == 200
        assert client.get("/api/info", headers={"host": "127.0.0.1"}).status_code == 200
        assert client.get("/api/info", headers={"host": "attacker.test:1234"}).status_code == 421
