"""tools/demo_app.py end to end with two automatic models: the real tool in a subprocess on a port
the OS chose, driven in headless Chromium with selenium (upload, results at the input's size,
layout without holes on a desktop and a phone, detail lens, colour, download, example, corrupt
and oversized uploads, another site's requests, a rebound host name, clean stop).

Needs Chromium and its driver (Debian: ``apt-get install chromium chromium-driver``) and selenium;
without them these tests are skipped, unless ALPHAFREE_REQUIRE_DEMO=1 (as in .ci/run), which
makes a missing browser a failure. ALPHAFREE_DEMO_SCREENSHOT=PATH also saves a screenshot of the
page comparing two models (docs/demo_app.png).
"""

import os
import re
import socket
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from api_helpers import bomb_png
from browser_helpers import (
    AttackerSite,
    act,
    assert_no_holes,
    attack_page,
    decode,
    desktop_view,
    fetch,
    phone_view,
    save_screenshot,
    wait_for_file,
)
from server_process import ServerProcess

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 300  # s: imports, two models, pymatting's first compilation on a fresh machine
INPUT_SIZE = (150, 200)  # (height, width) of the uploaded photo


@pytest.fixture(scope="module")
def server(tiny_pair):
    """The tool comparing the two tiny models, on a free port (--port 0, bound by the tool)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    demo = ServerProcess(
        [
            sys.executable,
            str(ROOT / "tools" / "demo_app.py"),
            "--config-file",
            tiny_pair.config_file,
            f"train.init_checkpoint={tiny_pair.checkpoints[0]}",
            "--compare",
            tiny_pair.config_file,
            tiny_pair.checkpoints[1],
            "--port",
            "0",
            "--device",
            "cpu",
        ],
        env=env,
        cwd=ROOT,
    )
    try:
        demo.wait_for_url(STARTUP_TIMEOUT)
        yield demo
    finally:
        demo.kill()


def upload(driver, path, expected="done"):
    """Choose ``path`` in the file input and wait for the run it starts (not an earlier one's
    state: body[data-op] counts finished operations)."""
    from selenium.webdriver.common.by import By

    act(driver, lambda: driver.find_element(By.ID, "file").send_keys(str(path)), expected)


def natural_size(driver, element_id):
    return tuple(
        driver.execute_script(
            "const img = document.getElementById(arguments[0]);"
            "return [img.naturalHeight, img.naturalWidth];",
            element_id,
        )
    )


@pytest.fixture(scope="module")
def page(browser, server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browser.driver
    driver.get(server.url)
    WebDriverWait(driver, 60).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "#examples button")) == 4
    )
    return browser


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    """A demo composite (hair, fur, veil over a photo) as a PNG file."""
    from alphafree_d2.data.datasets.demo_render import render_demo_sample
    from alphafree_d2.data.trimap import rng_for

    image, _ = render_demo_sample(rng_for(0, "browser_test"), *INPUT_SIZE)
    path = tmp_path_factory.mktemp("photos") / "demo_photo.png"
    assert cv2.imwrite(str(path), image[:, :, ::-1])
    return path


def show_photo(page, photo):
    """Upload ``photo`` through the file input unless the page shows its results already."""
    from selenium.webdriver.common.by import By

    driver = page.driver
    status = driver.find_element(By.ID, "status").text
    if driver.execute_script("return document.body.dataset.state") == "done" and status.startswith(
        f"{photo.stem}:"
    ):
        return driver
    upload(driver, photo)
    return driver


def test_upload_shows_alpha_cutouts_and_difference_at_the_input_size(page, photo):
    from selenium.webdriver.common.by import By

    driver = page.driver
    upload(driver, photo)
    for element_id in (
        "img-input",
        "img-alpha-0",
        "img-alpha-1",
        "img-cutout-0",
        "img-cutout-1",
        "img-color-0",
        "img-difference",
    ):
        assert driver.find_element(By.ID, element_id).is_displayed()
        assert natural_size(driver, element_id) == INPUT_SIZE, element_id
    status = driver.find_element(By.ID, "status").text
    assert re.match(r"demo_photo: 200\u00d7150 px, \d+\.\d\d s in all \(A: alpha", status), status
    assert not driver.find_element(By.ID, "error").is_displayed()

    if os.environ.get("ALPHAFREE_DEMO_SCREENSHOT"):
        save_screenshot(driver, os.environ["ALPHAFREE_DEMO_SCREENSHOT"])

    # the cutout over a colour follows the colour picker
    driver.execute_script(
        "const c = document.getElementById('color'); c.value = '#ff0000';"
        "c.dispatchEvent(new Event('input'));"
    )
    colour = driver.execute_script(
        "return getComputedStyle(document.getElementById('img-color-0').parentNode).backgroundColor"
    )
    assert colour == "rgb(255, 0, 0)"


def test_clicking_moves_the_magnified_detail(page, photo):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    driver = show_photo(page, photo)
    read = (
        "const lens = document.querySelector('#img-input + .lens');"
        "const canvas = document.querySelector('#results canvas');"
        "const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);"
        "let sum = 0; for (const v of pixels.data) sum += v;"
        "return [lens.style.left, lens.style.top, sum];"
    )
    left, _, before = driver.execute_script(read)
    assert before > 0, "the detail of the photo is blank"
    shown = driver.find_element(By.ID, "img-input")
    width = shown.size["width"]
    # the detail starts centred; a click near the left edge moves the 64 px window (4x) there
    ActionChains(driver).move_to_element_with_offset(shown, -width // 2 + 2, 0).click().perform()
    new_left, _, after = driver.execute_script(read)
    assert left != "0%" and new_left == "0%"
    assert after != before


def test_download_gives_the_alpha_and_cutout_pngs(page, photo):
    from selenium.webdriver.common.by import By

    driver = show_photo(page, photo)
    driver.find_element(By.ID, "dl-alpha-0").click()
    data = wait_for_file(page.downloads / "demo_photo_A_alpha.png")
    alpha = decode(data)
    assert alpha.shape == INPUT_SIZE and alpha.dtype == np.uint8
    shown = driver.find_element(By.ID, "img-alpha-0").get_attribute("src")
    assert data == fetch(shown)

    driver.find_element(By.ID, "dl-cutout-1").click()
    cutout = decode(wait_for_file(page.downloads / "demo_photo_B_cutout.png"))
    assert cutout.shape == INPUT_SIZE + (4,)


def test_example_photo_runs(page):
    from selenium.webdriver.common.by import By

    driver = page.driver
    act(
        driver,
        driver.find_element(By.CSS_SELECTOR, '#examples button[data-example="chelsea"]').click,
        "done",
    )
    assert driver.find_element(By.ID, "status").text.startswith("chelsea: 451\u00d7300 px")
    assert natural_size(driver, "img-alpha-1") == (300, 451)


def test_corrupt_upload_shows_a_message(page, tmp_path):
    from selenium.webdriver.common.by import By

    driver = page.driver
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    upload(driver, broken, "error")
    error = driver.find_element(By.ID, "error")
    assert error.is_displayed()
    assert error.text.startswith("broken.png: cannot be "), error.text
    assert "Traceback" not in error.text
    assert not driver.find_element(By.ID, "results").is_displayed()


def test_results_have_no_holes_on_a_desktop_and_a_phone(page, photo, tmp_path):
    """Alpha mattes, cutouts and details flow in balanced rows: no empty cell beside a title
    (as "Cutout on a checkerboard" once left the left half of the page empty)."""
    driver = show_photo(page, photo)
    groups = ["group-alpha", "group-cutout", "group-detail"]
    layout = assert_no_holes(driver, groups)
    assert [len(g["rows"]) for g in layout] == [1, 1, 1]  # 1400 px: each group in one row
    save_screenshot(driver, tmp_path / "desktop.png")
    phone_view(driver)
    try:
        layout = assert_no_holes(driver, groups)
        assert max(len(row) for row in layout[0]["rows"]) == 1  # one picture per row
        save_screenshot(driver, tmp_path / "phone.png")
    finally:
        desktop_view(driver)


def test_a_rebound_host_name_gets_no_page(page, server):
    """DNS rebinding: a name of another site that resolves to this machine (the browser maps
    *.test to 127.0.0.1) is refused; the page's address still works."""
    from selenium.webdriver.common.by import By

    driver = page.driver
    try:
        driver.get(f"http://rebound.test:{server.port}/")
        body = driver.find_element(By.TAG_NAME, "body").text
        assert "is not an address of this page" in body
        assert not driver.find_elements(By.ID, "examples")
        driver.get(f"http://rebound.test:{server.port}/api/info")
        assert "DNS rebinding" in driver.find_element(By.TAG_NAME, "body").text
    finally:
        driver.get(server.url)
    server.wait_for(re.compile(r"refused GET /api/info: Host 'rebound\.test"), 60, "refusal")


def test_another_site_cannot_make_the_page_compute(page, server):
    """A page of another site POSTs to the demo: a no-cors fetch reaches the server and is
    refused (its Origin, no page header); a fetch with the page's header needs a CORS preflight
    that is never granted, so it is not even sent. No prediction runs."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver = page.driver
    seen = len(server.output)
    site = AttackerSite(attack_page(server.url))
    try:
        driver.get(site.url)
        WebDriverWait(driver, 60).until(lambda d: d.title.startswith("done"))
        assert driver.title == "done: opaque 0, failed"
    finally:
        site.close()
        driver.get(server.url)
    refusal = server.wait_for(re.compile(r"refused POST /api/predict: (.*)"), 60, "refusal")
    assert refusal.group(1).startswith("cross-site request refused: Origin 'http://attacker.test:")
    assert not any(line.startswith("chelsea (") for line in server.output[seen:]), server.text()


def test_an_oversized_image_gets_a_message(page, tmp_path):
    from selenium.webdriver.common.by import By

    driver = page.driver
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(bomb_png(20000, 20000))
    upload(driver, bomb, "error")
    message = driver.find_element(By.ID, "error").text
    assert message.startswith("bomb.png: 20000 x 20000 pixels (400 megapixels) is above the cap")
    assert "--max-pixels" in message


def test_a_file_name_with_control_characters_still_uploads(page, photo, tmp_path):
    """The server refuses control characters in the name it is sent (400); the page sends the
    name with them replaced, so such a file (possible on Linux) still runs."""
    from selenium.webdriver.common.by import By

    driver = page.driver
    odd = tmp_path / "bell\x07photo.png"
    odd.write_bytes(photo.read_bytes())
    upload(driver, odd)
    assert driver.find_element(By.ID, "status").text.startswith("bell_photo: 200\u00d7150 px")


def test_server_stops_cleanly(server):
    port = server.port
    assert server.stop() == 0, server.text()
    assert "demo page stopped" in server.text()
    assert "Traceback" not in server.text(), server.text()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
