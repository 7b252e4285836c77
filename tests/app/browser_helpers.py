"""Helpers of the demo page's browser tests (selenium + headless Chromium): waits on the page's
state, reading its pictures and its trimap canvas, strokes with a mouse, a pen or a finger, the
layout check and screenshots. Every wait is on a condition, with a deadline."""

import base64
import io
import os
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np

RESULT_TIMEOUT = 180  # s: one photo through two tiny models and pymatting on a busy CPU


def state(driver):
    return driver.execute_script("return document.body.dataset.state")


def op_count(driver):
    return int(driver.execute_script("return document.body.dataset.op"))


def wait_for_op(driver, before, timeout=RESULT_TIMEOUT):
    """Wait until an operation started after ``op_count() == before`` has finished; its state
    ("ready", "done" or "error")."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(lambda d: op_count(d) > before)
    return state(driver)


def act(driver, action, expected, timeout=RESULT_TIMEOUT):
    """Run ``action()`` (a click, a file chosen) and wait for the operation it starts; assert
    that it ends in ``expected``."""
    from selenium.webdriver.common.by import By

    before = op_count(driver)
    action()
    ended = wait_for_op(driver, before, timeout)
    assert ended == expected, (ended, driver.find_element(By.ID, "error").text)


def by_testid(driver, testid):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, f'[data-testid="{testid}"]')


def natural_size(driver, element):
    return tuple(
        driver.execute_script(
            "return [arguments[0].naturalHeight, arguments[0].naturalWidth];", element
        )
    )


def fetch(url):
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.read()


def decode(data):
    array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert array is not None
    return array


def wait_for_file(path, timeout=60):
    """The bytes of a download once Chromium has finished writing it."""
    from selenium.webdriver.support.ui import WebDriverWait

    def done(_):
        return path.is_file() and not Path(str(path) + ".crdownload").exists()

    WebDriverWait(None, timeout, poll_frequency=0.2).until(done, f"{path.name} was not downloaded")
    return path.read_bytes()


def canvas_values(driver):
    """The painted trimap, read back from the canvas: uint8 (H, W) of 0 / 128 / 255."""
    script = """
        const canvas = document.querySelector('[data-testid="trimap-canvas"]');
        const rgba = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        const values = new Uint8Array(canvas.width * canvas.height);
        for (let i = 0; i < values.length; i++) {
          const r = rgba[4 * i], a = rgba[4 * i + 3];
          values[i] = a === 0 ? 128 : r === 64 ? 255 : r === 230 ? 0 : 1;
        }
        let text = '';
        for (let i = 0; i < values.length; i += 8192) {
          text += String.fromCharCode.apply(null, values.subarray(i, i + 8192));
        }
        return [canvas.height, canvas.width, btoa(text)];
    """
    height, width, data = driver.execute_script(script)
    values = np.frombuffer(base64.b64decode(data), np.uint8).reshape(height, width)
    assert set(np.unique(values)) <= {0, 128, 255}, "the canvas shows a colour of no class"
    return values


def set_range(driver, element, value):
    driver.execute_script(
        "arguments[0].value = arguments[1];"
        "arguments[0].dispatchEvent(new Event('input', {bubbles: true}));",
        element,
        value,
    )


def offset(element, fx, fy):
    """Selenium's offset from the element's centre of the point at fractions (fx, fy) of it."""
    size = element.size
    return round((fx - 0.5) * size["width"]), round((fy - 0.5) * size["height"])


def stroke(driver, element, points, kind="mouse"):
    """Press at the first point (fractions of the element), move through the others, release,
    with a mouse, a pen or a finger (W3C actions of that pointer type)."""
    from selenium.webdriver.common.actions import interaction
    from selenium.webdriver.common.actions.action_builder import ActionBuilder
    from selenium.webdriver.common.actions.pointer_input import PointerInput

    kinds = {
        "mouse": interaction.POINTER_MOUSE,
        "pen": interaction.POINTER_PEN,
        "touch": interaction.POINTER_TOUCH,
    }
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    builder = ActionBuilder(driver, mouse=PointerInput(kinds[kind], kind))
    x, y = offset(element, *points[0])
    builder.pointer_action.move_to(element, x, y).pointer_down()
    for point in points[1:]:
        x, y = offset(element, *point)
        builder.pointer_action.move_to(element, x, y)
    builder.pointer_action.pointer_up()
    builder.perform()
    pointer = driver.execute_script("return arguments[0].dataset.pointer", element)
    assert pointer == kind, f"the page saw a {pointer} stroke, not a {kind} one"


def line_pixels(points, size, margin=0.15):
    """Image pixels (rows, cols) along the polyline of ``points`` (fractions), without its first
    and last ``margin`` (where a stroke starts and ends)."""
    height, width = size
    rows, cols = [], []
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        for t in np.linspace(0, 1, 50):
            rows.append(int((y0 + (y1 - y0) * t) * height))
            cols.append(int((x0 + (x1 - x0) * t) * width))
    n = len(rows)
    keep = slice(int(n * margin), n - int(n * margin))
    return np.array(rows[keep]), np.array(cols[keep])


LAYOUT_SCRIPT = """
    const out = [];
    for (const grid of document.querySelectorAll('#results .pictures')) {
      const g = grid.getBoundingClientRect();
      const rows = new Map();
      for (const child of grid.children) {
        const r = child.getBoundingClientRect();
        const key = Math.round(r.top);
        if (!rows.has(key)) rows.set(key, []);
        rows.get(key).push([r.left, r.right, child.querySelectorAll('img, canvas, .model-error').length]);
      }
      out.push({group: grid.parentNode.id, left: g.left, right: g.right,
                rows: [...rows.keys()].sort((a, b) => a - b).map(k => rows.get(k).sort((a, b) => a[0] - b[0]))});
    }
    return [out, document.documentElement.scrollWidth, window.innerWidth];
"""


def assert_no_holes(driver, groups):
    """Every picture group of the results fills its rows from the left edge without gaps, rows
    differ by at most one picture (the last may be shorter), every cell holds a picture, and
    nothing overflows the window sideways. ``groups``: the ids expected."""
    layout, scroll_width, window_width = driver.execute_script(LAYOUT_SCRIPT)
    assert [g["group"] for g in layout] == groups
    assert scroll_width <= window_width, (
        f"the page is {scroll_width} px wide in a {window_width} px window"
    )
    for grid in layout:
        counts = [len(row) for row in grid["rows"]]
        assert counts == sorted(counts, reverse=True) and counts[0] - counts[-1] <= 1, (
            grid,
            counts,
        )
        for row in grid["rows"]:
            assert abs(row[0][0] - grid["left"]) <= 1, (
                grid["group"],
                "row does not start at the left",
            )
            for (_, right, _), (left, _, _) in zip(row, row[1:]):
                assert left - right <= 20, (grid["group"], "a hole between two pictures")
            assert all(cell[2] >= 1 for cell in row), (grid["group"], "a cell without a picture")
        if len(grid["rows"]) > 1:
            assert grid["rows"][0][-1][1] >= grid["right"] - 2, (
                grid["group"],
                "first row not full",
            )
    return layout


def phone_view(driver, width=390, height=844):
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": True},
    )


def desktop_view(driver):
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def save_screenshot(driver, path, bottom_element=None, width=None):
    """The whole page as PNG (beyond the window, as the window or the emulated phone lays it
    out), down to ``bottom_element``'s lower edge when given, scaled to ``width`` px when given,
    reduced to 256 colours so that it stays small in the repository."""
    from PIL import Image

    content = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    bottom = content["height"]
    if bottom_element is not None:
        bottom = 12 + driver.execute_script(
            "return arguments[0].getBoundingClientRect().bottom + window.scrollY;", bottom_element
        )
    clip = {"x": 0, "y": 0, "width": content["width"], "height": min(bottom, content["height"])}
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {"format": "png", "captureBeyondViewport": True, "clip": {**clip, "scale": 1}},
    )
    image = Image.open(io.BytesIO(base64.b64decode(shot["data"]))).convert("RGB")
    if width is not None and image.width > width:
        image = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


class AttackerSite:
    """Another web site for the browser: serves one page (``html``) on a free port of this
    machine; the browser reaches it as http://attacker.test:PORT/ (host-resolver rule)."""

    def __init__(self, html):
        body = html.encode("utf-8")

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://attacker.test:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def attack_page(target):
    """A page that tries to make the demo server at ``target`` compute: a no-cors POST (no
    preflight, no custom header), and a POST with the page's header (needs a CORS preflight).
    document.title becomes 'done: <outcome of each>'."""
    return f"""<!doctype html><title>attacking</title><script>
      const target = {target!r};
      async function attempt(options) {{
        try {{ const r = await fetch(target + 'api/predict?example=chelsea', options);
               return r.type + ' ' + r.status; }}
        catch (e) {{ return 'failed'; }}
      }}
      (async () => {{
        const simple = await attempt({{method: 'POST', mode: 'no-cors', body: 'x'}});
        const header = await attempt({{method: 'POST', headers: {{'X-Alphafree-Request': '1'}}}});
        document.title = 'done: ' + simple + ', ' + header;
      }})();
    </script>"""
