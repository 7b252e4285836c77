"""tools/demo_app.py end to end: the real tool in a subprocess on a port the OS chose, driven in
headless Chromium with selenium (upload, results at the input's size, detail lens, colour,
download, example, corrupt upload, clean stop).

Needs Chromium and its driver (Debian: ``apt-get install chromium chromium-driver``) and selenium;
without them these tests are skipped, unless ALPHAFREE_REQUIRE_DEMO=1 (as in .ci/run), which
makes a missing browser a failure. ALPHAFREE_DEMO_SCREENSHOT=PATH also saves a screenshot of the
page comparing two models (the README's docs/demo_app.png).
"""

import io
import os
import re
import shutil
import socket
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from server_process import ServerProcess

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 300  # s: imports, two models, pymatting's first compilation on a fresh machine
RESULT_TIMEOUT = 120  # s: one photo through two tiny models on a busy CPU
INPUT_SIZE = (150, 200)  # (height, width) of the uploaded photo


def _missing(what):
    message = f"{what}; install it to run the demo page's browser tests"
    if os.environ.get("ALPHAFREE_REQUIRE_DEMO") == "1":
        pytest.fail(message + " (ALPHAFREE_REQUIRE_DEMO=1 makes this a failure)")
    pytest.skip(message)


def _find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


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


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing("selenium is not installed (pip install -e .[test])")
    chromium, chromedriver = _find_chromium(), shutil.which("chromedriver")
    if chromium is None or chromedriver is None:
        _missing(
            "Chromium or chromedriver is not installed (apt-get install chromium chromium-driver)"
        )
    root = tmp_path_factory.mktemp("browser")
    downloads = root / "downloads"
    downloads.mkdir()
    options = Options()
    options.binary_location = chromium
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in a container
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,1200",
        f"--user-data-dir={root / 'profile'}",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ):
        options.add_argument(argument)
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    service = Service(executable_path=chromedriver, log_output=str(root / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        driver.set_page_load_timeout(60)
        driver.set_script_timeout(60)
        yield SimpleNamespace(driver=driver, downloads=downloads)
    finally:
        driver.quit()


def wait_for_state(driver, states, timeout=RESULT_TIMEOUT):
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(
        lambda d: d.execute_script("return document.body.dataset.state") in states
    )
    return driver.execute_script("return document.body.dataset.state")


def natural_size(driver, element_id):
    return tuple(
        driver.execute_script(
            "const img = document.getElementById(arguments[0]);"
            "return [img.naturalHeight, img.naturalWidth];",
            element_id,
        )
    )


def wait_for_file(path, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file() and not Path(str(path) + ".crdownload").exists():
            return path.read_bytes()
        time.sleep(0.2)
    raise AssertionError(f"{path.name} was not downloaded; folder has {os.listdir(path.parent)}")


def fetch(url):
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


def decode(data):
    array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert array is not None
    return array


def save_screenshot(driver, path):
    """The whole page as PNG (the window grown to its height), reduced to 256 colours so that it
    stays small in the repository."""
    from PIL import Image

    size = driver.get_window_size()
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(
        size["width"],
        size["height"] + max(0, height - driver.execute_script("return window.innerHeight")),
    )
    image = Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")
    driver.set_window_size(size["width"], size["height"])
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


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
    driver.find_element(By.ID, "file").send_keys(str(photo))
    state = wait_for_state(driver, ("done", "error"))
    assert state == "done", driver.find_element(By.ID, "error").text
    return driver


def test_upload_shows_alpha_cutouts_and_difference_at_the_input_size(page, photo):
    from selenium.webdriver.common.by import By

    driver = page.driver
    driver.find_element(By.ID, "file").send_keys(str(photo))
    assert wait_for_state(driver, ("done", "error")) == "done", driver.find_element(
        By.ID, "error"
    ).text
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
    driver.find_element(By.CSS_SELECTOR, '#examples button[data-example="chelsea"]').click()
    assert wait_for_state(driver, ("done", "error")) == "done", driver.find_element(
        By.ID, "error"
    ).text
    assert driver.find_element(By.ID, "status").text.startswith("chelsea: 451\u00d7300 px")
    assert natural_size(driver, "img-alpha-1") == (300, 451)


def test_corrupt_upload_shows_a_message(page, tmp_path):
    from selenium.webdriver.common.by import By

    driver = page.driver
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    driver.find_element(By.ID, "file").send_keys(str(broken))
    assert wait_for_state(driver, ("done", "error")) == "error"
    error = driver.find_element(By.ID, "error")
    assert error.is_displayed()
    assert error.text.startswith("broken.png: cannot be decoded as an image"), error.text
    assert "Traceback" not in error.text
    assert not driver.find_element(By.ID, "results").is_displayed()


def test_server_stops_cleanly(server):
    port = server.port
    assert server.stop() == 0, server.text()
    assert "demo page stopped" in server.text()
    assert "Traceback" not in server.text(), server.text()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
