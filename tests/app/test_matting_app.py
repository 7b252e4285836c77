"""The demo page's HTTP API, in-process with Starlette's test client (no browser, no socket):
photos in, alphas and cutouts out, and the limits (upload size, pixel cap, file names, broken
models, the queue, clients that leave)."""

import io
import logging
import threading

import anyio
import cv2
import numpy as np
import pytest

pytest.importorskip("starlette", reason="the demo extra is not installed: pip install -e .[demo]")
pytest.importorskip("httpx", reason="starlette's TestClient needs httpx: pip install -e .[test]")

from api_helpers import bomb_png, decode, page_client, png_bytes, upload  # noqa: E402

from alphafree_d2.app import DemoModel, builtin_examples, create_app, folder_examples  # noqa: E402
from alphafree_d2.app.images import UploadError, decode_upload, difference_image  # noqa: E402
from alphafree_d2.inference.batch import alpha_to_png, read_input_image  # noqa: E402
from alphafree_d2.inference.foreground import estimate_foreground, make_cutout  # noqa: E402
from alphafree_d2.utils.testing import random_image  # noqa: E402


@pytest.fixture
def single(tiny_predictors):
    app = create_app([DemoModel("model", tiny_predictors[0], "tiny")], builtin_examples())
    with page_client(app) as client:
        yield client


@pytest.fixture
def pair(tiny_predictors):
    models = [DemoModel("A", tiny_predictors[0]), DemoModel("B", tiny_predictors[1])]
    with page_client(create_app(models)) as client:
        yield client


def test_page_and_its_files_are_served(single):
    page = single.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for asset in ("/static/app.js", "/static/trimap_painter.js", "/static/app.css"):
        assert asset in page.text
        assert single.get(asset).status_code == 200


def test_info_lists_models_and_examples(single):
    info = single.get("/api/info").json()
    assert [m["name"] for m in info["models"]] == ["model"]
    assert info["models"][0]["device"] == "cpu"
    assert info["models"][0]["description"] == "tiny"
    assert [e["name"] for e in info["examples"]] == list(builtin_examples())
    assert info["models"][0]["trimap_input"] is False


def test_upload_gives_the_predictors_alpha_and_cutout_at_the_input_size(single, tiny_predictors):
    image = random_image(70, 90, seed=3)  # not a multiple of the model's 32 px
    response = upload(single, png_bytes(image))
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["width"], result["height"]) == (90, 70)
    assert result["name"] == "photo" and result["difference"] is None
    (model,) = result["models"]
    assert model["seconds"]["alpha"] >= 0 and model["seconds"]["cutout"] >= 0

    assert np.array_equal(decode(single.get(result["input"]).content), image)
    alpha = tiny_predictors[0](image)
    shown_alpha = decode(single.get(model["alpha"]).content)
    assert np.array_equal(shown_alpha, alpha_to_png(alpha))
    cutout = decode(single.get(model["cutout"]).content)
    assert np.array_equal(cutout, make_cutout(estimate_foreground(image, alpha), alpha))


def test_upload_is_read_as_predict_tool_reads_files(single, tmp_path):
    """EXIF orientation and 16-bit/grayscale files give the image tools/predict.py would use."""
    from PIL import Image

    path = tmp_path / "phone.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: viewers turn it 90 degrees clockwise
    Image.fromarray(random_image(30, 50, seed=4)).save(path, exif=exif, quality=95)
    deep = tmp_path / "deep.png"
    cv2.imwrite(str(deep), random_image(24, 36, channels=1, seed=5, dtype=np.uint16))
    for file in (path, deep):
        expected = read_input_image(str(file))
        result = upload(single, file.read_bytes(), file.name).json()
        assert (result["height"], result["width"]) == expected.shape[:2]
        assert np.array_equal(decode(single.get(result["input"]).content), expected)
    assert expected.shape[:2] == (24, 36) and read_input_image(str(path)).shape[:2] == (50, 30)


def test_compare_shows_both_models_and_their_difference(pair, tiny_predictors):
    image = random_image(48, 64, seed=6)
    result = upload(pair, png_bytes(image), "cat.png").json()
    assert [m["name"] for m in result["models"]] == ["A", "B"]
    a, b = (p(image) for p in tiny_predictors)
    for model, alpha in zip(result["models"], (a, b)):
        assert np.array_equal(decode(pair.get(model["alpha"]).content), alpha_to_png(alpha))
    assert not np.array_equal(alpha_to_png(a), alpha_to_png(b)), "the two models should differ"

    difference = result["difference"]
    assert difference["mean_abs"] == pytest.approx(np.abs(a - b).mean(), abs=1e-4)
    assert difference["max_abs"] == pytest.approx(np.abs(a - b).max(), abs=1e-4)
    picture = decode(pair.get(difference["image"]).content)
    assert picture.shape == (48, 64, 3)
    assert np.array_equal(picture, difference_image(a, b))


def test_downloads_are_attachments_named_after_the_photo(single, pair):
    image = png_bytes(random_image(20, 30, seed=7))
    result = upload(single, image, "my photo.jpg").json()
    response = single.get(result["models"][0]["alpha"], params={"download": 1})
    assert response.headers["content-disposition"] == 'attachment; filename="my_photo_alpha.png"'
    assert "content-disposition" not in single.get(result["models"][0]["alpha"]).headers

    result = upload(pair, image, "cat.png").json()
    response = pair.get(result["models"][1]["cutout"], params={"download": 1})
    assert response.headers["content-disposition"] == 'attachment; filename="cat_B_cutout.png"'
    assert decode(response.content).shape == (20, 30, 4)


@pytest.mark.parametrize(
    "data, expected",
    [
        (b"", "bad.png: the file is empty"),
        (b"GIF89a this is not an image", "bad.png: cannot be "),
        ("truncated", "bad.png: cannot be "),
    ],
)
def test_bad_upload_gets_a_message_naming_the_file(single, data, expected):
    if data == "truncated":
        data = png_bytes(random_image(40, 40, seed=8))[:60]
    response = upload(single, data, "bad.png")
    assert response.status_code == 400
    message = response.json()["error"]
    assert message.startswith(expected)
    assert "Traceback" not in message and "/tmp" not in message and "alphafree_demo_" not in message


def test_too_large_upload_is_refused(tiny_predictors):
    app = create_app([DemoModel("model", tiny_predictors[0])], max_upload_mb=1 / 1024)  # 1 KiB
    with page_client(app) as client:
        response = upload(client, png_bytes(random_image(64, 64, seed=9)), "big.png")
        assert response.status_code == 413
        assert (
            "big.png" in response.json()["error"] and "--max-upload-mb" in response.json()["error"]
        )


def test_examples_can_be_shown_and_run(single):
    image = decode(single.get("/api/examples/composite_1").content)
    assert image.shape == (320, 384, 3)
    result = single.post("/api/predict", params={"example": "composite_1"}).json()
    assert (result["height"], result["width"], result["name"]) == (320, 384, "composite_1")
    assert np.array_equal(decode(single.get(result["input"]).content), image)
    missing = single.post("/api/predict", params={"example": "nope"})
    assert missing.status_code == 404 and "nope" in missing.json()["error"]
    assert single.get("/api/examples/nope").status_code == 404


def test_only_the_latest_results_are_kept(tiny_predictors):
    app = create_app([DemoModel("model", tiny_predictors[0])], max_results=1)
    with page_client(app) as client:
        first = upload(client, png_bytes(random_image(16, 16, seed=10))).json()
        second = upload(client, png_bytes(random_image(16, 16, seed=11))).json()
        assert client.get(second["models"][0]["alpha"]).status_code == 200
        gone = client.get(first["models"][0]["alpha"])
        assert gone.status_code == 404 and "no longer kept" in gone.json()["error"]
        assert client.get(f"/api/results/{second['id']}/other.png").status_code == 404


def test_a_failing_model_is_reported_in_its_column(tiny_predictors):
    def broken(image):
        raise RuntimeError("CUDA out of memory (simulated)")

    message = "model B failed on x: RuntimeError: CUDA out of memory (simulated)"
    app = create_app([DemoModel("A", tiny_predictors[0]), DemoModel("B", broken)])
    with page_client(app) as client:
        response = upload(client, png_bytes(random_image(16, 16, seed=12)), "x.png")
        assert response.status_code == 200
        a, b = response.json()["models"]
        assert client.get(a["alpha"]).status_code == 200
        assert b == {"name": "B", "kind": "automatic", "error": message}
        assert response.json()["difference"] is None
    with page_client(create_app([DemoModel("B", broken)])) as client:
        response = upload(client, png_bytes(random_image(16, 16, seed=12)), "x.png")
        assert response.status_code == 500 and response.json()["error"] == message


def test_create_app_checks_its_models(tiny_predictors):
    with pytest.raises(ValueError, match="at least one model"):
        create_app([])
    for bad in (0, -5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="max_upload_mb"):
            create_app([DemoModel("A", tiny_predictors[0])], max_upload_mb=bad)
    with pytest.raises(ValueError, match="must differ"):
        create_app([DemoModel("A", tiny_predictors[0]), DemoModel("A", tiny_predictors[1])])


def test_folder_examples(tmp_path):
    cv2.imwrite(str(tmp_path / "b.png"), random_image(10, 12, seed=13))
    cv2.imwrite(str(tmp_path / "a.jpg"), random_image(8, 6, seed=14))
    (tmp_path / "notes.txt").write_text("not an image")
    examples = folder_examples(str(tmp_path))
    assert list(examples) == ["a.jpg", "b.png"]
    assert examples["b.png"].image().shape == (10, 12, 3)
    assert examples["b.png"].trimap is None
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no images"):
        folder_examples(str(empty))
    with pytest.raises(ValueError, match="not a folder"):
        folder_examples(str(tmp_path / "missing"))


def test_difference_image_matches_a_plain_reference():
    rng = np.random.default_rng(0)
    a, b = rng.random((2, 9, 11)).astype(np.float32)
    picture = difference_image(a, b)
    for y, x in np.ndindex(a.shape):
        d = float(a[y, x]) - float(b[y, x])
        expected = (round(max(d, 0.0) * 255), 0, round(max(-d, 0.0) * 255))
        assert tuple(int(v) for v in picture[y, x]) == pytest.approx(expected, abs=1)
    with pytest.raises(ValueError, match="shapes differ"):
        difference_image(a, b[:, :5])


def test_decode_upload_names_the_upload_not_the_temporary_file():
    with pytest.raises(UploadError) as info:
        decode_upload(b"not an image", "../holiday.jpg")
    assert str(info.value).startswith("holiday.jpg: cannot be ")
    buffer = io.BytesIO(png_bytes(random_image(5, 7, seed=15)))
    assert decode_upload(buffer.getvalue(), "x.png").shape == (5, 7, 3)


# -- hostile and broken input ---------------------------------------------------------------


def test_a_decompression_bomb_is_refused_before_it_is_decoded(single, monkeypatch):
    """A PNG of a few hundred bytes that declares 20000 x 20000 pixels: 413 with the file, its
    size and the cap named, without decoding it."""

    def never(*args, **kwargs):
        raise AssertionError("the upload was decoded")

    monkeypatch.setattr("cv2.imdecode", never)
    data = bomb_png(20000, 20000)
    assert len(data) < 1000
    for path in ("/api/predict", "/api/photos"):
        response = upload(single, data, "bomb.png", path=path)
        assert response.status_code == 413, response.text
        message = response.json()["error"]
        assert message.startswith("bomb.png: 20000 x 20000 pixels (400 megapixels)")
        assert "cap of 100 megapixels" in message and "--max-pixels" in message


def test_the_pixel_cap_follows_create_app(tiny_predictors):
    app = create_app([DemoModel("A", tiny_predictors[0])], max_pixels=40 * 40)
    with page_client(app) as client:
        assert upload(client, png_bytes(random_image(40, 40, seed=1))).status_code == 200
        response = upload(client, png_bytes(random_image(40, 41, seed=1)), "big.png")
        assert response.status_code == 413
        assert response.json()["error"].startswith("big.png: 41 x 40 pixels")
        assert client.get("/api/info").json()["max_pixels"] == 1600


@pytest.mark.parametrize("name", ["a.p\x00ng", "line\nbreak.png", "esc\x1b.png", "del\x7f.png"])
def test_control_characters_in_the_file_name_are_refused(single, name, app_log):
    data = png_bytes(random_image(8, 8, seed=2))
    for path in ("/api/predict", "/api/photos"):
        response = upload(single, data, name, path=path)
        assert response.status_code == 400, response.text
        message = response.json()["error"]
        assert message.startswith(f"the file name {ascii(name)} contains control characters")
    assert not [r for r in app_log.records if r.exc_info or r.levelno >= logging.ERROR]
    broken = create_app([DemoModel("B", lambda image: 1 / 0)])
    with page_client(broken) as client:
        assert upload(client, data, "x.png").status_code == 500
    assert [r for r in app_log.records if r.exc_info], "the log handler sees nothing"


def nan_predictor(image):
    alpha = np.full(image.shape[:2], 0.5, dtype=np.float32)
    alpha[: image.shape[0] // 2] = np.nan
    return alpha


def test_non_finite_alpha_is_an_error_not_a_black_matte(tiny_predictors):
    """Any predictor callable: NaN or infinity in its alpha is an error in its column."""

    def infinite(image):
        return np.full(image.shape[:2], np.inf, dtype=np.float32)

    image = png_bytes(random_image(20, 24, seed=3))
    models = [DemoModel("A", tiny_predictors[0]), DemoModel("B", nan_predictor)]
    with page_client(create_app(models)) as client:
        result = upload(client, image, "cat.png").json()
        a, b = result["models"]
        assert "alpha" in a and "alpha" not in b and result["difference"] is None
        assert b["error"].startswith("model B returned 240 non-finite alpha values (NaN or")
        assert "of 480 on cat" in b["error"]
    with page_client(create_app([DemoModel("C", infinite)])) as client:
        response = upload(client, image, "cat.png")
        assert response.status_code == 500
        assert response.json()["error"].startswith("model C returned 480 non-finite alpha values")


def test_a_checkpoint_with_nan_weights_shows_an_error(nan_checkpoint):
    from detectron2.config import LazyConfig

    from alphafree_d2.inference import MattingPredictor

    cfg = LazyConfig.load(nan_checkpoint.config_file)
    predictor = MattingPredictor(cfg, nan_checkpoint.checkpoint, device="cpu")
    with page_client(create_app([DemoModel("N", predictor)])) as client:
        response = upload(client, png_bytes(random_image(32, 32, seed=4)), "x.png")
    assert response.status_code == 500
    assert "model N" in response.json()["error"] and "non-finite" in response.json()["error"]


class Blocking:
    """A predictor that, on its first ``block`` calls, says it started and waits for
    ``release`` (a test opens it); it counts calls and concurrent callers."""

    def __init__(self, inner, block=1):
        self.inner = inner
        self.block = block
        self.started = threading.Event()
        self.release = threading.Event()
        self.calls = 0
        self.active = 0
        self.most_active = 0
        self._lock = threading.Lock()

    def __call__(self, image):
        with self._lock:
            self.calls += 1
            self.active += 1
            self.most_active = max(self.most_active, self.active)
            wait = self.calls <= self.block
        try:
            if wait:
                self.started.set()
                assert self.release.wait(60), "the test never released the predictor"
            return self.inner(image)
        finally:
            with self._lock:
                self.active -= 1


def test_the_queue_is_bounded_and_busy_requests_get_503(tiny_predictors):
    """One inference at a time per model; one request waits (max_waiting=1); the third is
    refused at once with Retry-After, before its upload is read."""
    blocking = Blocking(tiny_predictors[0])
    app = create_app([DemoModel("A", blocking)], max_waiting=1)
    queue = app.state.service.queue
    image = png_bytes(random_image(16, 16, seed=5))
    answers = {}
    with page_client(app) as client:

        def send(key):
            answers[key] = upload(client, image, f"{key}.png")

        first = threading.Thread(target=send, args=("first",))
        first.start()
        assert blocking.started.wait(60)
        second = threading.Thread(target=send, args=("second",))
        second.start()
        assert queue.wait_for_count(2, timeout=60)
        try:
            refused = upload(client, b"not even read", "third.png")
            assert refused.status_code == 503
            assert int(refused.headers["retry-after"]) >= 1
            assert refused.json()["error"].startswith("the server is busy (2 requests running")
            photo = client.post("/api/photos", params={"example": "nope"})
            assert photo.status_code == 404  # uploading photos is not queued
        finally:
            blocking.release.set()
            first.join(60)
            second.join(60)
        assert answers["first"].status_code == answers["second"].status_code == 200
        assert blocking.calls == 2 and blocking.most_active == 1
        assert queue.count == 0
        assert upload(client, image, "fourth.png").status_code == 200


def asgi_post(app, path, query, body, gone):
    """POST to the ASGI ``app`` as a client that disconnects once ``gone`` (a threading.Event)
    is set; returns an async function giving the response status."""

    async def call():
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": [
                (b"host", b"127.0.0.1:7860"),
                (b"x-alphafree-request", b"1"),
                (b"content-length", str(len(body)).encode()),
            ],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 7860),
        }
        pending = [{"type": "http.request", "body": body, "more_body": False}]
        statuses = []

        async def receive():
            if pending:
                return pending.pop()
            if gone.is_set():
                return {"type": "http.disconnect"}
            await anyio.sleep_forever()  # is_disconnected() cancels this at once

        async def send(message):
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        await app(scope, receive, send)
        return statuses[0]

    return call


def run_concurrently(*calls):
    """Run async callables in one event loop; their results in order."""
    results = [None] * len(calls)

    async def main():
        async with anyio.create_task_group() as group:
            for index, call in enumerate(calls):

                async def run(index=index, call=call):
                    results[index] = await call()

                group.start_soon(run)

    anyio.run(main)
    return results


def counting(predictor):
    calls = []

    def wrapped(image):
        calls.append(image.shape)
        return predictor(image)

    return wrapped, calls


def test_work_stops_when_the_client_disconnects(tiny_predictors, monkeypatch):
    """A client that leaves while model A runs: model B and the post-processing (foreground
    estimation) of A's alpha are skipped."""
    blocking = Blocking(tiny_predictors[0])
    b, b_calls = counting(tiny_predictors[1])
    estimations = []
    real = estimate_foreground
    monkeypatch.setattr(
        "alphafree_d2.app.service.estimate_foreground",
        lambda *args: estimations.append(1) or real(*args),
    )
    app = create_app([DemoModel("A", blocking), DemoModel("B", b)])
    gone = threading.Event()
    image = png_bytes(random_image(16, 16, seed=6))
    call = asgi_post(app, "/api/predict", "filename=x.png", image, gone)

    async def leave_while_a_runs():
        await anyio.to_thread.run_sync(blocking.started.wait, 60)
        gone.set()
        blocking.release.set()

    (status, _) = run_concurrently(call, leave_while_a_runs)
    assert status == 499
    assert blocking.calls == 1 and b_calls == [] and estimations == []


def test_queued_requests_of_clients_that_left_never_run(tiny_predictors):
    """Six uploads whose clients gave up while a seventh ran: none of them runs a model."""
    blocking = Blocking(tiny_predictors[0])
    app = create_app([DemoModel("A", blocking)], max_waiting=6)
    queue = app.state.service.queue
    image = png_bytes(random_image(16, 16, seed=7))
    stay, left = threading.Event(), threading.Event()
    left.set()
    statuses = {}

    async def main():
        async def run(key, call):
            statuses[key] = await call()

        async with anyio.create_task_group() as group:
            group.start_soon(
                run, "stays", asgi_post(app, "/api/predict", "filename=a.png", image, stay)
            )
            await anyio.to_thread.run_sync(blocking.started.wait, 60)  # it holds model A
            for i in range(6):
                call = asgi_post(app, "/api/predict", f"filename={i}.png", image, left)
                group.start_soon(run, i, call)
            assert await anyio.to_thread.run_sync(queue.wait_for_count, 7, 60)
            blocking.release.set()

    anyio.run(main)
    assert statuses == {"stays": 200, **{i: 499 for i in range(6)}}
    assert blocking.calls == 1 and queue.count == 0


def test_a_closed_connection_stops_the_work_on_a_real_server(tiny_predictors):
    """The same through uvicorn and a socket: the browser's connection closes while model A
    runs; model B never runs."""
    import socket
    import time

    from live_server import LiveServer

    blocking = Blocking(tiny_predictors[0])
    b, b_calls = counting(tiny_predictors[1])
    live = LiveServer(
        lambda hosts: create_app([DemoModel("A", blocking), DemoModel("B", b)], allowed_hosts=hosts)
    )
    try:
        port = live.sock.getsockname()[1]
        body = png_bytes(random_image(16, 16, seed=8))
        head = (
            f"POST /api/predict?filename=x.png HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"X-Alphafree-Request: 1\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        client = socket.create_connection(("127.0.0.1", port), timeout=60)
        client.sendall(head.encode() + body)
        assert blocking.started.wait(60)
        client.close()
        connections = live.server.server_state.connections
        deadline = time.monotonic() + 60
        while connections:  # the server has seen the connection close
            assert time.monotonic() < deadline, "the server never saw the client leave"
            blocking.release.wait(0.05)
        blocking.release.set()
        assert live.app.state.service.queue.wait_for_count(0, 60)
        assert b_calls == [] and blocking.calls == 1
    finally:
        blocking.release.set()
        live.close()
