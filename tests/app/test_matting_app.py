"""The demo page's HTTP API, in-process with Starlette's test client (no browser, no socket)."""

import io

import cv2
import numpy as np
import pytest

pytest.importorskip("starlette", reason="the demo extra is not installed: pip install -e .[demo]")
pytest.importorskip("httpx", reason="starlette's TestClient needs httpx: pip install -e .[test]")

from starlette.testclient import TestClient  # noqa: E402

from alphafree_d2.app import DemoModel, builtin_examples, create_app, folder_examples  # noqa: E402
from alphafree_d2.app.images import UploadError, decode_upload, difference_image  # noqa: E402
from alphafree_d2.inference.batch import alpha_to_png, read_input_image  # noqa: E402
from alphafree_d2.inference.foreground import estimate_foreground, make_cutout  # noqa: E402
from alphafree_d2.utils.testing import random_image  # noqa: E402


def png_bytes(array):
    """uint8 RGB(A) or gray array -> PNG bytes (written with OpenCV, channel order swapped)."""
    if array.ndim == 3:
        array = array[:, :, [2, 1, 0, 3][: array.shape[2]]]
    ok, data = cv2.imencode(".png", array)
    assert ok
    return data.tobytes()


def decode(data):
    """PNG bytes -> array, RGB(A) order."""
    array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert array is not None, "not a decodable image"
    if array.ndim == 3:
        array = array[:, :, [2, 1, 0, 3][: array.shape[2]]]
    return array


@pytest.fixture
def single(tiny_predictors):
    app = create_app([DemoModel("model", tiny_predictors[0], "tiny")], builtin_examples())
    with TestClient(app) as client:
        yield client


@pytest.fixture
def pair(tiny_predictors):
    models = [DemoModel("A", tiny_predictors[0]), DemoModel("B", tiny_predictors[1])]
    with TestClient(create_app(models)) as client:
        yield client


def upload(client, data, filename="photo.png"):
    return client.post("/api/predict", params={"filename": filename}, content=data)


def test_page_and_its_files_are_served(single):
    page = single.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for asset in ("/static/app.js", "/static/app.css"):
        assert asset in page.text
        assert single.get(asset).status_code == 200


def test_info_lists_models_and_examples(single):
    info = single.get("/api/info").json()
    assert [m["name"] for m in info["models"]] == ["model"]
    assert info["models"][0]["device"] == "cpu"
    assert info["models"][0]["description"] == "tiny"
    assert info["examples"] == list(builtin_examples())


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
        (b"GIF89a this is not an image", "bad.png: cannot be decoded as an image"),
        ("truncated", "bad.png: cannot be decoded as an image"),
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
    with TestClient(app) as client:
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
    with TestClient(app) as client:
        first = upload(client, png_bytes(random_image(16, 16, seed=10))).json()
        second = upload(client, png_bytes(random_image(16, 16, seed=11))).json()
        assert client.get(second["models"][0]["alpha"]).status_code == 200
        gone = client.get(first["models"][0]["alpha"])
        assert gone.status_code == 404 and "no longer kept" in gone.json()["error"]
        assert client.get(f"/api/results/{second['id']}/other.png").status_code == 404


def test_a_failing_model_is_reported_on_the_page(tiny_predictors):
    def broken(image):
        raise RuntimeError("CUDA out of memory (simulated)")

    app = create_app([DemoModel("A", tiny_predictors[0]), DemoModel("B", broken)])
    with TestClient(app) as client:
        response = upload(client, png_bytes(random_image(16, 16, seed=12)), "x.png")
    assert response.status_code == 500
    assert response.json()["error"] == (
        "model B failed on x: RuntimeError: CUDA out of memory (simulated)"
    )


def test_create_app_checks_its_models(tiny_predictors):
    with pytest.raises(ValueError, match="at least one model"):
        create_app([])
    with pytest.raises(ValueError, match="must differ"):
        create_app([DemoModel("A", tiny_predictors[0]), DemoModel("A", tiny_predictors[1])])


def test_folder_examples(tmp_path):
    cv2.imwrite(str(tmp_path / "b.png"), random_image(10, 12, seed=13))
    cv2.imwrite(str(tmp_path / "a.jpg"), random_image(8, 6, seed=14))
    (tmp_path / "notes.txt").write_text("not an image")
    examples = folder_examples(str(tmp_path))
    assert list(examples) == ["a.jpg", "b.png"]
    assert examples["b.png"]().shape == (10, 12, 3)
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
    assert str(info.value).startswith("holiday.jpg: cannot be decoded")
    buffer = io.BytesIO(png_bytes(random_image(5, 7, seed=15)))
    assert decode_upload(buffer.getvalue(), "x.png").shape == (5, 7, 3)
