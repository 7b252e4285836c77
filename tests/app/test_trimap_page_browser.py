"""The trimap painter end to end: tools/demo_app.py comparing a trimap-guided model (A) with an
automatic one (B), with --examples holding a trimap, driven in headless Chromium through the
page's data-testid hooks. Strokes with a mouse, a pen and a finger; the alpha obeys them; the
trimap downloads as painted; a loaded trimap is drawn; undo, redo, clear; an example's trimap;
auto trimaps from model B's alpha and from a mask; the closed-form reference; the results
without holes on a desktop and a phone.

ALPHAFREE_TRIMAP_SCREENSHOT=PATH saves a screenshot of painting (docs/trimap_painting.png).
Skipped like test_demo_app_browser.py without a browser.
"""

import os
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from browser_helpers import (
    act,
    assert_no_holes,
    by_testid,
    canvas_values,
    decode,
    desktop_view,
    fetch,
    line_pixels,
    natural_size,
    phone_view,
    save_screenshot,
    set_range,
    stroke,
    wait_for_file,
)
from server_process import ServerProcess

from alphafree_d2.app.trimaps import trimap_from_alpha, trimap_from_mask
from alphafree_d2.inference.batch import read_input_image

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
PHOTO_SIZE = (160, 240)  # (height, width) of the uploaded photo
UNKNOWN = 128


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The photo to upload, a trimap and a mask for it, and an --examples folder whose
    shell.png has trimap/shell.png."""
    from alphafree_d2.data.datasets.demo_render import render_demo_sample
    from alphafree_d2.data.trimap import alpha_to_trimap, rng_for

    root = tmp_path_factory.mktemp("trimap_page")
    image, alpha = render_demo_sample(rng_for(0, "trimap_page"), *PHOTO_SIZE)
    cv2.imwrite(str(root / "photo.png"), image[:, :, ::-1])
    pattern = np.full(PHOTO_SIZE, UNKNOWN, np.uint8)
    pattern[:, :60] = 0
    pattern[40:120, 170:] = 255
    cv2.imwrite(str(root / "pattern.png"), pattern)
    mask = np.zeros(PHOTO_SIZE, np.uint8)
    cv2.circle(mask, (120, 80), 50, 255, -1)
    cv2.imwrite(str(root / "mask.png"), mask)
    examples = root / "examples"
    (examples / "trimap").mkdir(parents=True)
    shell, shell_alpha = render_demo_sample(rng_for(1, "trimap_page"), 128, 192)
    cv2.imwrite(str(examples / "shell.png"), shell[:, :, ::-1])
    shell_trimap = alpha_to_trimap(shell_alpha, kernel_size=9, reference_size=None)
    cv2.imwrite(str(examples / "trimap" / "shell.png"), shell_trimap)
    return {
        "photo": root / "photo.png",
        "pattern": (root / "pattern.png", pattern),
        "mask": (root / "mask.png", mask),
        "examples": examples,
        "shell_trimap": shell_trimap,
    }


@pytest.fixture(scope="module")
def server(tiny_trimap, tiny_pair, files):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    demo = ServerProcess(
        [
            sys.executable,
            str(ROOT / "tools" / "demo_app.py"),
            "--config-file",
            tiny_trimap.config_file,
            f"train.init_checkpoint={tiny_trimap.checkpoint}",
            "--compare",
            tiny_pair.config_file,
            tiny_pair.checkpoints[0],
            "--examples",
            str(files["examples"]),
            "--port",
            "0",
            "--device",
            "cpu",
        ],
        env=env,
        cwd=ROOT,
    )
    try:
        demo.wait_for_url(300)
        yield demo
    finally:
        demo.kill()


@pytest.fixture(scope="module")
def page(browser, server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browser.driver
    driver.get(server.url)
    WebDriverWait(driver, 60).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "#examples button")) == 5
    )
    assert driver.execute_script("return document.body.dataset.mode") == "painting"
    return browser


def open_upload(driver, path):
    """Upload the photo through the page's file input; the painter shows it, all unknown."""
    act(driver, lambda: by_testid(driver, "upload").send_keys(str(path)), "ready")
    canvas = by_testid(driver, "trimap-canvas")
    assert canvas.is_displayed()
    return canvas


def brush(driver, name, size):
    by_testid(driver, f"brush-{name}").click()
    set_range(driver, by_testid(driver, "brush-size"), size)


def test_strokes_decide_the_alpha(page, files):
    """Foreground with a mouse, background with a pen and a finger, a stroke erased: the
    returned alpha (at the photo's size) is 1 under foreground and 0 under background; the
    trimap sent and downloaded is the painted one; the reference column is timed."""
    driver = page.driver
    canvas = open_upload(driver, files["photo"])
    assert (canvas_values(driver) == UNKNOWN).all()
    fg_line = [(0.55, 0.3), (0.8, 0.3), (0.8, 0.55)]
    bg_pen = [(0.06, 0.1), (0.06, 0.9)]
    bg_touch = [(0.94, 0.1), (0.94, 0.9)]
    erased = [(0.3, 0.75), (0.45, 0.75)]
    brush(driver, "fg", 16)
    stroke(driver, canvas, fg_line, "mouse")
    stroke(driver, canvas, erased, "mouse")
    brush(driver, "bg", 16)
    stroke(driver, canvas, bg_pen, "pen")
    stroke(driver, canvas, bg_touch, "touch")
    brush(driver, "unknown", 40)
    stroke(driver, canvas, erased, "mouse")
    values = canvas_values(driver)
    assert (values[line_pixels(fg_line, PHOTO_SIZE)] == 255).all()
    assert (values[line_pixels(bg_pen, PHOTO_SIZE)] == 0).all()
    assert (values[line_pixels(bg_touch, PHOTO_SIZE)] == 0).all()
    assert (values[line_pixels(erased, PHOTO_SIZE, margin=0)] == UNKNOWN).all()

    by_testid(driver, "reference").click()
    act(driver, by_testid(driver, "run").click, "done")
    image = by_testid(driver, "alpha-image")
    assert natural_size(driver, image) == PHOTO_SIZE
    alpha = decode(fetch(image.get_attribute("src")))
    assert alpha.shape == PHOTO_SIZE and alpha.dtype == np.uint8
    assert (values == 255).sum() > 100 and (values == 0).sum() > 100
    assert (alpha[values == 255] == 255).all(), "alpha is not 1 under the foreground strokes"
    assert (alpha[values == 0] == 0).all(), "alpha is not 0 under the background strokes"
    assert image.get_attribute("id") == "img-alpha-0"  # model A, the trimap-guided one
    sent = decode(fetch(driver.find_element("id", "img-trimap").get_attribute("src")))
    assert np.array_equal(sent, values)

    from selenium.webdriver.common.by import By

    reference = driver.find_element(By.ID, "img-alpha-2")
    caption = reference.find_element(By.XPATH, "../../figcaption").text
    assert caption.startswith("closed-form alpha") and caption.split()[2].replace(".", "").isdigit()
    assert natural_size(driver, reference) == PHOTO_SIZE

    by_testid(driver, "trimap-download").click()
    downloaded = decode(wait_for_file(page.downloads / "photo_trimap.png"))
    assert downloaded.ndim == 2 and downloaded.dtype == np.uint8
    assert np.array_equal(downloaded, values)


def test_a_loaded_trimap_is_drawn_and_undo_redo_clear_work(page, files):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    driver = page.driver
    canvas = open_upload(driver, files["photo"])
    path, pattern = files["pattern"]
    act(driver, lambda: by_testid(driver, "trimap-upload").send_keys(str(path)), "ready")
    assert np.array_equal(canvas_values(driver), pattern)

    brush(driver, "fg", 24)
    stroke(driver, canvas, [(0.35, 0.2), (0.35, 0.8)])
    painted = canvas_values(driver)
    assert (painted[line_pixels([(0.35, 0.2), (0.35, 0.8)], PHOTO_SIZE)] == 255).all()
    by_testid(driver, "undo").click()
    assert np.array_equal(canvas_values(driver), pattern)
    ActionChains(driver).key_down(Keys.CONTROL).send_keys("z").key_up(Keys.CONTROL).perform()
    assert (canvas_values(driver) == UNKNOWN).all()  # before the trimap was loaded
    by_testid(driver, "redo").click()
    assert np.array_equal(canvas_values(driver), pattern)
    by_testid(driver, "redo").click()
    assert np.array_equal(canvas_values(driver), painted)
    assert not by_testid(driver, "redo").is_enabled()
    by_testid(driver, "clear").click()
    assert (canvas_values(driver) == UNKNOWN).all()
    by_testid(driver, "undo").click()
    assert np.array_equal(canvas_values(driver), painted)

    # a trimap of another size is refused with a message; the painting stays
    wrong = path.parent / "wrong_size.png"
    cv2.imwrite(str(wrong), pattern[:100])
    act(driver, lambda: by_testid(driver, "trimap-upload").send_keys(str(wrong)), "error")
    message = driver.find_element("id", "error").text
    assert message.startswith("wrong_size.png is 240x100 px but the photo photo is 240x160 px")
    assert np.array_equal(canvas_values(driver), painted)


def test_an_example_brings_its_trimap(page, files):
    from selenium.webdriver.common.by import By

    driver = page.driver
    button = driver.find_element(By.CSS_SELECTOR, '#examples button[data-example="shell.png"]')
    act(driver, button.click, "ready")
    assert np.array_equal(canvas_values(driver), files["shell_trimap"])
    act(driver, by_testid(driver, "run").click, "done")
    alpha = decode(fetch(by_testid(driver, "alpha-image").get_attribute("src")))
    trimap = files["shell_trimap"]
    assert (alpha[trimap == 255] == 255).all() and (alpha[trimap == 0] == 0).all()


def test_refine_on_this_photo(page, files):
    """The switch sends refine_steps with the painted trimap; the trimap-guided model's column
    says it was refined and keeps the trimap's known regions; the automatic one is not refined."""
    from selenium.webdriver.common.by import By

    driver = page.driver
    button = driver.find_element(By.CSS_SELECTOR, '#examples button[data-example="shell.png"]')
    act(driver, button.click, "ready")
    assert by_testid(driver, "refine").is_displayed()
    steps = by_testid(driver, "refine-steps")
    assert int(steps.get_attribute("value")) > 0  # the page offers the server's default
    steps.clear()
    steps.send_keys("2")
    by_testid(driver, "refine").click()
    try:
        act(driver, by_testid(driver, "run").click, "done")
        results = driver.find_element(By.ID, "results").text
        assert results.count("refined on this photo: 2 steps") == 1, results
        alpha = decode(fetch(by_testid(driver, "alpha-image").get_attribute("src")))
        trimap = files["shell_trimap"]
        assert (alpha[trimap == 255] == 255).all() and (alpha[trimap == 0] == 0).all()
    finally:
        by_testid(driver, "refine").click()  # off again for the other tests


def test_auto_trimaps_from_the_automatic_model_and_from_a_mask(page, files, tiny_predictors):
    from selenium.webdriver.common.by import By

    driver = page.driver
    open_upload(driver, files["photo"])
    driver.find_element(By.CSS_SELECTOR, "#auto summary").click()
    alpha = tiny_predictors[0](read_input_image(str(files["photo"])))  # model B's checkpoint
    low, high = (round(float(q), 3) for q in np.quantile(alpha, [0.25, 0.75]))
    for field, value in (("auto-low", low), ("auto-high", high), ("auto-band", 5)):
        element = driver.find_element(By.ID, field)
        element.clear()
        element.send_keys(str(value))
    assert by_testid(driver, "auto-trimap-model-name").get_attribute("value") == "B"
    act(driver, by_testid(driver, "auto-trimap-model").click, "ready")
    made = canvas_values(driver)
    assert np.array_equal(made, trimap_from_alpha(alpha, low, high, 5))
    assert set(np.unique(made)) == {0, UNKNOWN, 255}

    from selenium.webdriver.common.keys import Keys

    band = driver.find_element(By.ID, "mask-band")
    band.clear()
    band.send_keys("8", Keys.TAB)  # a change of the band re-makes the trimap of a chosen mask
    path, mask = files["mask"]
    act(driver, lambda: by_testid(driver, "auto-trimap-mask").send_keys(str(path)), "ready")
    assert np.array_equal(canvas_values(driver), trimap_from_mask(mask >= 128, 8))
    by_testid(driver, "undo").click()  # an auto trimap is one step of the history
    assert np.array_equal(canvas_values(driver), made)


def test_painting_a_photo_and_the_results_on_a_desktop_and_a_phone(page, tmp_path):
    """Strokes on a real photo (skimage's astronaut), run with the reference: the results flow
    without holes at 1400 px and at phone width, and the painter fits the phone."""
    from selenium.webdriver.common.by import By

    driver = page.driver
    button = driver.find_element(By.CSS_SELECTOR, '#examples button[data-example="astronaut"]')
    act(driver, button.click, "ready")
    canvas = by_testid(driver, "trimap-canvas")
    brush(driver, "fg", 26)
    for line in (
        [(0.44, 0.08), (0.44, 0.3), (0.38, 0.5), (0.4, 0.75), (0.35, 0.95)],  # hair, face, suit
        [(0.33, 0.12), (0.55, 0.1)],  # hair
        [(0.12, 0.95), (0.12, 0.7), (0.2, 0.58), (0.3, 0.55)],  # arm
        [(0.55, 0.55), (0.62, 0.65), (0.5, 0.85), (0.48, 0.98)],  # suit
        [(0.7, 0.85), (0.9, 0.8)],  # helmet
    ):
        stroke(driver, canvas, line)
    brush(driver, "bg", 34)
    for line in (
        [(0.04, 0.02), (0.06, 0.45)],  # flag
        [(0.15, 0.03), (0.22, 0.2), (0.18, 0.35)],  # wall
        [(0.62, 0.03), (0.66, 0.3), (0.75, 0.45), (0.95, 0.45), (0.95, 0.05), (0.75, 0.05)],
        [(0.8, 0.6), (0.97, 0.62)],  # table
    ):
        stroke(driver, canvas, line)
    if not driver.find_element(By.ID, "reference").is_selected():
        by_testid(driver, "reference").click()
    act(driver, by_testid(driver, "run").click, "done")
    if os.environ.get("ALPHAFREE_TRIMAP_SCREENSHOT"):
        group = driver.find_element(By.ID, "group-alpha")
        save_screenshot(driver, os.environ["ALPHAFREE_TRIMAP_SCREENSHOT"], group, width=1000)
    groups = ["group-alpha", "group-cutout", "group-detail"]
    layout = assert_no_holes(driver, groups)
    assert sum(len(row) for row in layout[0]["rows"]) == 6  # photo, trimap, A, B, reference, A-B
    save_screenshot(driver, tmp_path / "desktop.png")
    phone_view(driver)
    try:
        assert_no_holes(driver, groups)
        stage = driver.execute_script(
            "return document.getElementById('stage').getBoundingClientRect().right"
        )
        assert stage <= driver.execute_script("return window.innerWidth")
        save_screenshot(driver, tmp_path / "phone.png")
    finally:
        desktop_view(driver)
