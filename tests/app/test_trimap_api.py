"""The demo page with trimap-guided models, through its HTTP API in-process: photos, trimaps sent
with them (checked like read_trimap), known regions copied into the alpha, examples with
trimaps, auto trimaps (from an automatic model's alpha, from a mask), and the closed-form
reference column."""

import cv2
import numpy as np
import pytest
import torch

pytest.importorskip("starlette", reason="the demo extra is not installed: pip install -e .[demo]")
pytest.importorskip("httpx", reason="starlette's TestClient needs httpx: pip install -e .[test]")

from api_helpers import bomb_png, decode, page_client, png_bytes, upload  # noqa: E402

from alphafree_d2.app import DemoModel, Example, builtin_examples, create_app, folder_examples  # noqa: E402
from alphafree_d2.app.trimaps import (  # noqa: E402
    apply_known_regions,
    closed_form_alpha,
    trimap_from_alpha,
    trimap_from_mask,
)
from alphafree_d2.data.io import read_trimap, snap_trimap  # noqa: E402
from alphafree_d2.inference.batch import alpha_to_png  # noqa: E402
from alphafree_d2.utils.testing import random_image  # noqa: E402

SIZE = (48, 64)  # (height, width) of the test photos


def stroked_trimap(size=SIZE):
    """Everything unknown but a background stroke on the left and a foreground one on the
    right (what a user paints first)."""
    trimap = np.full(size, 128, np.uint8)
    trimap[:, :8] = 0
    trimap[10:30, 44:56] = 255
    return trimap


@pytest.fixture
def mixed(trimap_predictor, tiny_predictors):
    """A trimap-guided model "T" compared with an automatic one "A" (as --compare mixes them)."""
    models = [DemoModel("T", trimap_predictor), DemoModel("A", tiny_predictors[0])]
    with page_client(create_app(models, builtin_examples())) as client:
        yield client


def open_photo(client, image, name="photo.png"):
    response = upload(client, png_bytes(image), name, path="/api/photos")
    assert response.status_code == 200, response.text
    return response.json()


def predict(client, photo_id, trimap, **params):
    return client.post(
        "/api/predict",
        params={"photo": photo_id, "filename": "trimap.png", **params},
        content=b"" if trimap is None else png_bytes(trimap),
    )


def test_info_says_which_models_are_trimap_guided(mixed):
    info = mixed.get("/api/info").json()
    assert [(m["name"], m["trimap_input"]) for m in info["models"]] == [("T", True), ("A", False)]
    assert info["reference"] == "closed-form"
    assert {"name": "composite_1", "trimap": True} in info["examples"]
    assert {"name": "chelsea", "trimap": False} in info["examples"]


def test_the_trimap_guides_the_model_and_its_known_regions_are_kept(
    mixed, trimap_predictor, tiny_predictors
):
    image = random_image(*SIZE, seed=1)
    photo = open_photo(mixed, image)
    assert (photo["width"], photo["height"], photo["name"], photo["trimap"]) == (
        64,
        48,
        "photo",
        None,
    )
    assert np.array_equal(decode(mixed.get(photo["image"]).content), image)
    trimap = stroked_trimap()
    response = predict(mixed, photo["photo"], trimap)
    assert response.status_code == 200, response.text
    result = response.json()
    guided, automatic = result["models"]
    assert (guided["kind"], automatic["kind"]) == ("trimap", "automatic")
    alpha = decode(mixed.get(guided["alpha"]).content)
    assert alpha.shape == SIZE
    assert (alpha[trimap == 255] == 255).all() and (alpha[trimap == 0] == 0).all()
    expected = trimap_predictor(image, trimap)
    assert np.array_equal(alpha, alpha_to_png(expected))
    assert np.array_equal(
        decode(mixed.get(automatic["alpha"]).content), alpha_to_png(tiny_predictors[0](image))
    )
    assert np.array_equal(decode(mixed.get(result["trimap"]).content), trimap)
    assert result["difference"] is not None


def test_known_regions_are_copied_for_any_trimap_guided_predictor():
    def ignores_the_trimap(image, trimap):
        return np.full(image.shape[:2], 0.5, np.float32)

    app = create_app([DemoModel("G", ignores_the_trimap, trimap_input=True)])
    with page_client(app) as client:
        photo = open_photo(client, random_image(*SIZE, seed=2))
        trimap = stroked_trimap()
        result = predict(client, photo["photo"], trimap).json()
        alpha = decode(client.get(result["models"][0]["alpha"]).content)
    assert (alpha[trimap == 255] == 255).all() and (alpha[trimap == 0] == 0).all()
    assert (alpha[trimap == 128] == 128).all()


def test_a_trimap_guided_model_needs_the_trimap(mixed):
    image = png_bytes(random_image(*SIZE, seed=3))
    for response in (
        upload(mixed, image, "photo.png"),
        predict(mixed, open_photo(mixed, random_image(*SIZE, seed=3))["photo"], None),
    ):
        assert response.status_code == 400
        assert response.json()["error"].startswith("model T needs a trimap: send it with the photo")


def test_trimaps_are_snapped_and_checked_like_trimap_files(mixed, tmp_path):
    photo = open_photo(mixed, random_image(*SIZE, seed=4))
    url = f"/api/photos/{photo['photo']}/trimap"
    noisy = stroked_trimap()
    noisy[noisy == 128] = 120  # JPEG-like noise around the three levels
    noisy[noisy == 255] = 250
    response = upload(mixed, png_bytes(noisy), "noisy.png", path=url)
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert np.array_equal(decode(response.content), snap_trimap(noisy))

    cases = {
        "colour.png": (np.dstack([stroked_trimap()] * 2 + [np.zeros(SIZE, np.uint8)]), "grayscale"),
        "labels.png": (
            (stroked_trimap() // 127).astype(np.uint8),
            "every pixel would read as background",
        ),
        "small.png": (
            stroked_trimap((40, 64)),
            "small.png is 64x40 px but the photo photo is 64x48 px",
        ),
    }
    for name, (array, expected) in cases.items():
        for path in (url, "/api/predict"):
            params = {"photo": photo["photo"]} if path == "/api/predict" else {}
            response = upload(mixed, png_bytes(array), name, path=path, **params)
            assert response.status_code == 400, (name, path)
            message = response.json()["error"]
            assert message.startswith(f"{name}") and expected in message, message
            path_in_message = tmp_path.parent.name in message or "alphafree_demo_" in message
            assert not path_in_message, message
    # the same reader as the package's trimap files (read_trimap)
    cv2.imwrite(str(tmp_path / "t.png"), noisy)
    assert np.array_equal(read_trimap(str(tmp_path / "t.png")), snap_trimap(noisy))


def test_trimap_and_mask_uploads_obey_the_pixel_cap(mixed, monkeypatch):
    photo = open_photo(mixed, random_image(*SIZE, seed=5))

    def never(*args, **kwargs):
        raise AssertionError("the upload was decoded")

    monkeypatch.setattr("cv2.imdecode", never)
    for path, params in (
        (f"/api/photos/{photo['photo']}/trimap", {}),
        (f"/api/photos/{photo['photo']}/auto-trimap", {}),
        ("/api/predict", {"photo": photo["photo"]}),
    ):
        response = upload(mixed, bomb_png(30000, 20000), "bomb.png", path=path, **params)
        assert response.status_code == 413, (path, response.text)
        assert response.json()["error"].startswith("bomb.png: 30000 x 20000 pixels")
    response = upload(mixed, b"x", "a\x00.png", path=f"/api/photos/{photo['photo']}/trimap")
    assert response.status_code == 400 and "control characters" in response.json()["error"]


def test_examples_bring_their_trimaps(mixed):
    photo = mixed.post("/api/photos", params={"example": "composite_1"}).json()
    image, expected = (
        builtin_examples()["composite_1"].image(),
        builtin_examples()["composite_1"].trimap(),
    )
    assert expected.shape == image.shape[:2] and set(np.unique(expected)) == {0, 128, 255}
    assert np.array_equal(decode(mixed.get(photo["trimap"]).content), expected)
    # predicting an example without a trimap in the body uses its own
    result = mixed.post("/api/predict", params={"example": "composite_1"}).json()
    assert np.array_equal(decode(mixed.get(result["trimap"]).content), expected)
    no_trimap = mixed.post("/api/photos", params={"example": "chelsea"}).json()
    assert no_trimap["trimap"] is None
    assert mixed.get(f"/api/photos/{no_trimap['photo']}/trimap.png").status_code == 404


def test_folder_examples_take_their_trimaps_from_the_trimap_folder(tmp_path, trimap_predictor):
    cv2.imwrite(str(tmp_path / "a.png"), random_image(*SIZE, seed=6))
    cv2.imwrite(str(tmp_path / "b.jpg"), random_image(*SIZE, seed=7))
    cv2.imwrite(str(tmp_path / "c.png"), random_image(*SIZE, seed=8))
    (tmp_path / "trimap").mkdir()
    cv2.imwrite(str(tmp_path / "trimap" / "a.png"), stroked_trimap())
    cv2.imwrite(str(tmp_path / "trimap" / "c.png"), stroked_trimap((20, 20)))
    examples = folder_examples(str(tmp_path))
    assert list(examples) == ["a.png", "b.jpg", "c.png"]
    assert np.array_equal(examples["a.png"].trimap(), stroked_trimap())
    assert examples["b.jpg"].trimap is None
    with page_client(create_app([DemoModel("T", trimap_predictor)], examples)) as client:
        assert client.post("/api/photos", params={"example": "a.png"}).json()["trimap"]
        response = client.post("/api/photos", params={"example": "c.png"})
        assert response.status_code == 400
        message = response.json()["error"]
        assert message.startswith(f"the trimap {tmp_path / 'trimap' / 'c.png'} is 20x20 px")


def test_auto_trimap_from_the_automatic_models_alpha(mixed, tiny_predictors):
    image = random_image(*SIZE, seed=9)
    photo = open_photo(mixed, image)
    alpha = tiny_predictors[0](image)
    low, high = (float(q) for q in np.quantile(alpha, [0.3, 0.7]))  # the tiny model's range
    url = f"/api/photos/{photo['photo']}/auto-trimap"
    response = mixed.post(url, params={"model": "A", "low": low, "high": high, "band": 3})
    assert response.status_code == 200, response.text
    trimap = decode(response.content)
    assert np.array_equal(trimap, trimap_from_alpha(alpha, low, high, 3))
    assert set(np.unique(trimap)) == {0, 128, 255}
    bad = [
        ({"model": "T"}, 400, "model T is trimap-guided"),
        ({"model": "Z"}, 404, "no model named 'Z'"),
        ({"model": "A", "low": 0.9, "high": 0.1}, 400, "low=0.9 must be below high=0.1"),
        ({"model": "A", "low": "nan"}, 400, "low='nan': expected a number from 0.0 to 1.0"),
        ({"model": "A", "band": -1}, 400, "band='-1': expected a whole number from 0 to 1000"),
    ]
    for params, status, message in bad:
        response = mixed.post(url, params=params)
        assert response.status_code == status and response.json()["error"].startswith(message)


def test_auto_trimap_from_a_mask(mixed):
    photo = open_photo(mixed, random_image(*SIZE, seed=10))
    mask = np.zeros(SIZE, np.uint8)
    cv2.circle(mask, (32, 24), 14, 255, -1)
    url = f"/api/photos/{photo['photo']}/auto-trimap"
    response = upload(mixed, png_bytes(mask), "mask.png", path=url, band=6)
    assert response.status_code == 200, response.text
    assert np.array_equal(decode(response.content), trimap_from_mask(mask >= 128, 6))
    wrong = upload(mixed, png_bytes(mask[:40]), "mask.png", path=url)
    assert wrong.status_code == 400 and "mask.png is 64x40 px" in wrong.json()["error"]
    empty = upload(mixed, b"", "mask.png", path=url)
    assert empty.status_code == 400


def plain_erosion(mask, size):
    """Reference erosion: a pixel stays when every pixel of the ellipse around it that lies in
    the image is in the mask (outside the image counts as inside)."""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)).astype(bool)
    ay, ax = size // 2, size // 2
    out = np.zeros_like(mask)
    for y, x in np.ndindex(mask.shape):
        keep = True
        for dy, dx in zip(*np.nonzero(kernel)):
            qy, qx = y + dy - ay, x + dx - ax
            if 0 <= qy < mask.shape[0] and 0 <= qx < mask.shape[1] and not mask[qy, qx]:
                keep = False
                break
        out[y, x] = keep
    return out


@pytest.mark.parametrize("band", [0, 1, 4, 7])
def test_trimap_from_alpha_matches_a_plain_reference(band):
    rng = np.random.default_rng(band)
    alpha = cv2.GaussianBlur(rng.random((23, 29)).astype(np.float32), (7, 7), 0)
    alpha = (alpha - alpha.min()) / (alpha.max() - alpha.min())
    low, high = 0.3, 0.6
    fg, bg = alpha >= high, alpha <= low
    if band:
        fg, bg = plain_erosion(fg, band), plain_erosion(bg, band)
    expected = np.full(alpha.shape, 128, np.uint8)
    expected[bg] = 0
    expected[fg] = 255
    assert np.array_equal(trimap_from_alpha(alpha, low, high, band), expected)
    mask = alpha >= 0.5
    expected = np.full(alpha.shape, 128, np.uint8)
    expected[plain_erosion(~mask, band) if band else ~mask] = 0
    expected[plain_erosion(mask, band) if band else mask] = 255
    assert np.array_equal(trimap_from_mask(mask, band), expected)
    with pytest.raises(ValueError, match="low < high"):
        trimap_from_alpha(alpha, 0.6, 0.6)


def two_colour_blend(height, width):
    """An exact blend of two flat colours: closed-form matting must recover its alpha."""
    yy, xx = np.mgrid[:height, :width]
    alpha = np.clip(1.5 - np.hypot(yy - height / 2, xx - width / 2) / (width / 6), 0, 1)
    fg, bg = np.array([220.0, 200.0, 180.0]), np.array([20.0, 40.0, 60.0])
    image = np.rint(alpha[..., None] * fg + (1 - alpha[..., None]) * bg).astype(np.uint8)
    alpha = (image[..., 0].astype(np.float32) - 20) / 200  # exactly what the image encodes
    trimap = np.full((height, width), 128, np.uint8)
    trimap[alpha >= 1] = 255
    trimap[alpha <= 0] = 0
    return image, alpha, trimap


def test_closed_form_reference_recovers_a_blend(tiny_predictors):
    image, alpha, trimap = two_colour_blend(40, 60)
    solved, size = closed_form_alpha(image, trimap)
    assert size == (40, 60) and np.abs(solved - alpha).max() < 0.02
    assert (solved[trimap == 255] == 1).all() and (solved[trimap == 0] == 0).all()
    # more unknown pixels than allowed: solved smaller, upscaled, known regions exact
    small, size = closed_form_alpha(image, trimap, max_unknown=300)
    assert size[0] < 40 and small.shape == (40, 60)
    assert np.abs(small - alpha).mean() < 0.05
    assert np.array_equal(apply_known_regions(small, trimap), small)
    with pytest.raises(ValueError, match="it has no foreground"):
        closed_form_alpha(image, np.where(trimap == 255, 128, trimap).astype(np.uint8))


def test_reference_column_is_closed_form_with_the_same_trimap(mixed):
    image, alpha, trimap = two_colour_blend(40, 60)
    photo = open_photo(mixed, image, "blend.png")
    result = predict(mixed, photo["photo"], trimap, reference=1).json()
    names = [(m["name"], m["kind"]) for m in result["models"]]
    assert names == [("T", "trimap"), ("A", "automatic"), ("closed-form", "reference")]
    reference = result["models"][2]
    assert reference["seconds"]["alpha"] >= 0 and "note" not in reference
    shown = decode(mixed.get(reference["alpha"]).content)
    assert np.array_equal(shown, alpha_to_png(closed_form_alpha(image, trimap)[0]))
    download = mixed.get(reference["alpha"], params={"download": 1})
    assert 'filename="blend_closed-form_alpha.png"' in download.headers["content-disposition"]
    assert result["difference"] is not None  # of the two models, not the reference
    # without foreground strokes the reference column says why; the models still run
    no_fg = np.where(trimap == 255, 128, trimap).astype(np.uint8)
    result = predict(mixed, photo["photo"], no_fg, reference=1).json()
    assert result["models"][2]["error"].startswith("closed-form: closed-form matting needs both")
    assert "alpha" in result["models"][0]
    bad = predict(mixed, photo["photo"], trimap, reference="maybe")
    assert bad.status_code == 400 and bad.json()["error"] == "reference='maybe': expected 1 or 0"


def test_an_automatic_models_alpha_is_computed_once_per_photo(trimap_predictor):
    calls = []

    def automatic(image):
        calls.append(1)
        return np.full(image.shape[:2], 0.25, np.float32)

    app = create_app([DemoModel("T", trimap_predictor), DemoModel("A", automatic)])
    with page_client(app) as client:
        photo = open_photo(client, random_image(*SIZE, seed=11))
        client.post(f"/api/photos/{photo['photo']}/auto-trimap", params={"model": "A"})
        for _ in range(2):
            assert predict(client, photo["photo"], stroked_trimap()).status_code == 200
    assert len(calls) == 1


def test_example_objects_and_plain_loaders_both_work(trimap_predictor):
    image = random_image(*SIZE, seed=12)
    examples = {"plain": lambda: image, "with": Example(lambda: image, lambda: stroked_trimap())}
    with page_client(create_app([DemoModel("T", trimap_predictor)], examples)) as client:
        info = client.get("/api/info").json()["examples"]
        assert info == [{"name": "plain", "trimap": False}, {"name": "with", "trimap": True}]
        assert client.post("/api/predict", params={"example": "with"}).status_code == 200


def test_refine_on_this_photo(mixed, trimap_predictor):
    """refine_steps=N: the trimap-guided model is fine-tuned on the photo before it predicts
    (the predictor's refine, same seed: the same alpha), the automatic one runs as usual, the
    loaded model is unchanged, and /api/info offers it."""
    info = mixed.get("/api/info").json()
    assert info["refine"]["models"] == ["T"]
    assert 0 < info["refine"]["steps"] <= info["refine"]["max_steps"]
    image, trimap = random_image(*SIZE, seed=5), stroked_trimap()
    photo = open_photo(mixed, image)
    before = {k: v.clone() for k, v in trimap_predictor.model.state_dict().items()}

    plain = predict(mixed, photo["photo"], trimap)
    refined = predict(mixed, photo["photo"], trimap, refine_steps=3)
    assert plain.status_code == refined.status_code == 200, refined.text
    plain_t, plain_a = plain.json()["models"]
    refined_t, refined_a = refined.json()["models"]
    assert refined_t["note"] == "refined on this photo: 3 steps" and "note" not in plain_t
    assert "note" not in refined_a
    page_alpha = decode(mixed.get(refined_t["alpha"]).content)
    expected = alpha_to_png(trimap_predictor.refine(image, trimap, steps=3))
    assert np.array_equal(page_alpha, expected)
    assert not np.array_equal(page_alpha, decode(mixed.get(plain_t["alpha"]).content))
    assert np.array_equal(
        decode(mixed.get(refined_a["alpha"]).content), decode(mixed.get(plain_a["alpha"]).content)
    )
    for key, value in trimap_predictor.model.state_dict().items():
        assert torch.equal(value, before[key]), key


@pytest.mark.parametrize("value", ["-1", "1.5", "abc", "1001"])
def test_refine_steps_out_of_range_are_refused(mixed, value):
    photo = open_photo(mixed, random_image(*SIZE, seed=6))
    response = predict(mixed, photo["photo"], stroked_trimap(), refine_steps=value)
    assert response.status_code == 400
    assert f"refine_steps={value!r}: expected a whole number from 0 to 1000" in response.text


def test_a_predictor_without_refine_says_so():
    def guided(image, trimap):
        return np.full(trimap.shape, 0.5, np.float32)

    app = create_app([DemoModel("G", guided, trimap_input=True)], builtin_examples())
    with page_client(app) as client:
        assert client.get("/api/info").json()["refine"]["models"] == []
        photo = open_photo(client, random_image(*SIZE, seed=7))
        response = predict(client, photo["photo"], stroked_trimap(), refine_steps=5)
        assert response.status_code == 500
        assert "model G cannot be refined on a photo" in response.json()["error"]
