"""The page when the server says no: a model whose alpha is NaN gets an error in its column, and
a busy server's 503 tells when to retry. Models the test controls, served in-process (see
live_server.py), driven in headless Chromium; skipped like test_demo_app_browser.py."""

import threading
import urllib.request

import numpy as np
import pytest
from browser_helpers import act, by_testid, natural_size
from live_server import LiveServer

from alphafree_d2.app import REQUEST_HEADER, DemoModel, create_app
from alphafree_d2.utils.testing import random_image

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(600)]


class Gate:
    """A predictor that, while ``closed`` is set, says it started and waits for ``opened``."""

    def __init__(self, inner):
        self.inner = inner
        self.closed = threading.Event()
        self.started = threading.Event()
        self.opened = threading.Event()

    def __call__(self, image):
        if self.closed.is_set():
            self.started.set()
            assert self.opened.wait(120), "the test never opened the gate"
        return self.inner(image)


def nan_alpha(image):
    return np.full(image.shape[:2], np.nan, dtype=np.float32)


@pytest.fixture(scope="module")
def served(tiny_predictors):
    gate = Gate(tiny_predictors[0])
    models = [DemoModel("A", gate, "tiny"), DemoModel("B", nan_alpha, "NaN weights")]
    server = LiveServer(lambda hosts: create_app(models, allowed_hosts=hosts, max_waiting=0))
    try:
        yield server, gate
    finally:
        server.close()


@pytest.fixture(scope="module")
def page(browser, served):
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browser.driver
    driver.get(served[0].url)
    WebDriverWait(driver, 60).until(
        lambda d: d.execute_script("return document.querySelectorAll('#models li').length") == 2
    )
    return driver


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    import cv2

    path = tmp_path_factory.mktemp("limits") / "cat.png"
    cv2.imwrite(str(path), random_image(40, 60, seed=1))
    return path


def test_a_model_returning_nan_shows_an_error_not_a_black_matte(page, photo):
    from selenium.webdriver.common.by import By

    act(page, lambda: by_testid(page, "upload").send_keys(str(photo)), "done")
    assert natural_size(page, page.find_element(By.ID, "img-alpha-0")) == (40, 60)
    assert not page.find_elements(By.ID, "img-alpha-1")
    error = page.find_element(By.ID, "model-error-1")
    assert error.is_displayed()
    assert "model B returned 2400 non-finite alpha values (NaN or infinity)" in error.text
    assert "B: failed" in page.find_element(By.ID, "status").text


def test_a_busy_server_says_when_to_try_again(page, photo, served):
    """max_waiting=0: while a prediction runs, the page's upload is answered 503 at once; the
    page shows the server's message with the wait."""
    from selenium.webdriver.common.by import By

    server, gate = served
    gate.closed.set()
    request = urllib.request.Request(
        f"{server.url}api/predict?filename=other.png",
        data=photo.read_bytes(),
        headers={REQUEST_HEADER: "1"},
        method="POST",
    )
    answers = []
    other = threading.Thread(
        target=lambda: answers.append(urllib.request.urlopen(request, timeout=120).status)
    )
    other.start()
    try:
        assert gate.started.wait(120)
        act(page, lambda: by_testid(page, "upload").send_keys(str(photo)), "error")
        message = page.find_element(By.ID, "error").text
        assert message.startswith("the server is busy (1 request running or waiting")
        assert "Try again in" in message
    finally:
        gate.closed.clear()
        gate.opened.set()
        other.join(120)
    assert answers == [200]
    act(page, lambda: by_testid(page, "upload").send_keys(str(photo)), "done")
