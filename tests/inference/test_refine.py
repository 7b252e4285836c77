"""Per-photo refinement (alphafree_d2/inference/refine.py): it lowers the training loss on the
photo, leaves the original model untouched, is deterministic for a seed, bounds what a step
sees, and `tools/predict.py --refine-steps 0` is today's prediction."""

from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from detectron2.config import LazyConfig, instantiate

from alphafree_d2.checkpoint.matting_checkpointer import MattingCheckpointer
from alphafree_d2.inference.predictor import MattingPredictor
from alphafree_d2.inference.refine import (
    RefinementPolicy,
    crop_boxes,
    parse_losses,
    refine_and_predict,
    refine_model,
    refinement_criterion,
)
from alphafree_d2.modeling.meta_arch import ViTMatte
from alphafree_d2.utils.testing import load_script, randomise, tiny_config

ROOT = Path(__file__).resolve().parents[2]
# The tiny model, trimap-guided, with the paper's criterion (K = 5 and the plain torch backend to
# stay small and compile nothing).
REFINE_CONFIG = (
    tiny_config(in_chans=4)
    .replace(
        "criterion=L(nn.Identity)(),",
        "criterion=L(MattingCriterion)(losses={'known': 1.0, 'ddc': 10.0}, kernel_size=5, "
        "backend='torch'),",
    )
    .replace(
        "import ViTMatte", "import ViTMatte\nfrom alphafree_d2.modeling import MattingCriterion"
    )
)


@pytest.fixture(scope="module")
def guided(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_refine_model")
    config_file = root / "config.py"
    config_file.write_text(REFINE_CONFIG)
    cfg = LazyConfig.load(str(config_file))
    torch.manual_seed(0)
    model = randomise(instantiate(cfg.model)).eval()
    MattingCheckpointer(model, str(root)).save("model_final")
    cfg.train.init_checkpoint = str(root / "model_final.pth")
    return SimpleNamespace(config_file=str(config_file), cfg=cfg, model=model)


def photo(h=56, w=72, seed=0):
    """A noisy orange disc on a noisy blue background with a soft edge, and its trimap (uint8,
    128 within 4 px of the edge): (image uint8 (h, w, 3), trimap uint8 (h, w))."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot(yy - h / 2, xx - w / 2) - min(h, w) / 3
    alpha = np.clip(0.5 - r / 3, 0, 1)[..., None]
    fg, bg = np.array([230, 140, 40]), np.array([30, 60, 200])
    image = alpha * fg + (1 - alpha) * bg + rng.normal(0, 12, (h, w, 3))
    trimap = np.where(r < -4, 255, np.where(r > 4, 0, 128)).astype(np.uint8)
    return np.clip(image, 0, 255).astype(np.uint8), trimap


def tensors(image, trimap):
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    t = torch.full(trimap.shape, 0.5)
    t[torch.from_numpy(trimap == 0)] = 0.0
    t[torch.from_numpy(trimap == 255)] = 1.0
    return x, t[None, None]


def total_loss(model, x, t):
    with torch.no_grad():
        return float(sum(model.losses(x, t).values()))


def test_refinement_lowers_the_training_loss_on_the_photo(guided):
    x, t = tensors(*photo())
    before = total_loss(guided.model, x, t)
    for region in ("whole", "crops"):
        policy = RefinementPolicy(steps=15, lr=5e-3, region=region, crop_size=32, batch_size=2)
        after = total_loss(refine_model(guided.model, x, t, policy), x, t)
        assert after < 0.8 * before, (region, before, after)


def test_the_original_model_is_unchanged(guided):
    state = {k: v.clone() for k, v in guided.model.state_dict().items()}
    x, t = tensors(*photo())
    refined = refine_model(guided.model, x, t, RefinementPolicy(steps=3, lr=1e-2))
    after = guided.model.state_dict()
    assert all(torch.equal(state[k], after[k]) for k in state)
    assert not guided.model.training and not refined.training
    assert all(not p.requires_grad for p in refined.parameters())
    assert any(not torch.equal(state[k], v) for k, v in refined.state_dict().items())


def test_deterministic_for_a_seed(guided):
    x, t = tensors(*photo())

    def alpha(seed):
        policy = RefinementPolicy(steps=4, lr=1e-3, crop_size=32, batch_size=2, seed=seed)
        return refine_and_predict(guided.model, x, t, policy)

    first = alpha(0)
    assert torch.equal(first, alpha(0))
    assert not torch.equal(first, alpha(1))  # the crops depend on the seed


def test_crops_are_centred_on_the_band_and_never_larger_than_asked():
    trimap = torch.zeros(100, 80)
    trimap[60, 30] = 0.5  # one unknown pixel
    rng = np.random.default_rng(0)
    assert crop_boxes(trimap, 32, 3, rng) == [(60 - 16, 30 - 16, 32, 32)] * 3
    trimap[2, 78] = 0.5  # near a corner: the crop is shifted inside the image
    for y, x, h, w in crop_boxes(trimap, 32, 20, rng):
        assert (h, w) == (32, 32) and 0 <= y <= 100 - 32 and 0 <= x <= 80 - 32
        assert trimap[y : y + h, x : x + w].eq(0.5).any()
    # Nothing unknown: uniform positions; a side smaller than the crop is used whole.
    for y, x, h, w in crop_boxes(torch.zeros(20, 50), 32, 20, rng):
        assert (y, h, w) == (0, 20, 32) and 0 <= x <= 50 - 32


def test_memory_bound_what_a_step_sees(guided, monkeypatch):
    seen = []
    losses = ViTMatte.losses

    def recording(self, images, trimaps, *args, **kwargs):
        seen.append(tuple(images.shape))
        return losses(self, images, trimaps, *args, **kwargs)

    monkeypatch.setattr(ViTMatte, "losses", recording)
    x, t = tensors(*photo(70, 90))
    refine_model(guided.model, x, t, RefinementPolicy(steps=3, crop_size=32, batch_size=3))
    assert seen == [(3, 3, 32, 32)] * 3
    seen.clear()
    policy = RefinementPolicy(steps=2, region="whole", max_megapixels=0.0016)  # 1600 px
    refine_model(guided.model, x, t, policy)
    (shape,) = set(seen)
    assert len(seen) == 2 and shape[2] * shape[3] <= 1700 and shape[2] < shape[3]
    seen.clear()
    refine_model(guided.model, x, t, RefinementPolicy(steps=1, region="whole"))
    assert seen == [(1, 3, 70, 90)]


def test_predictor_refine(guided):
    image, trimap = photo()
    predictor = MattingPredictor(guided.cfg, device="cpu")
    plain = predictor(image, trimap)
    assert np.array_equal(predictor.refine(image, trimap, steps=0), plain)
    refined = predictor.refine(image, trimap, steps=3, lr=1e-3, losses={"known": 1.0})
    policy = RefinementPolicy(steps=3, lr=1e-3, losses={"known": 1.0})
    reference = refine_and_predict(predictor.model, *tensors(image, trimap), policy)[0, 0]
    assert np.array_equal(refined, reference.numpy())
    assert not np.array_equal(refined, plain)
    np.testing.assert_array_equal(refined[trimap == 255], 1.0)  # known regions from the trimap
    assert np.array_equal(predictor(image, trimap), plain)  # the predictor's model is unchanged
    on = MattingPredictor(guided.cfg, device="cpu", refinement=policy)
    assert np.array_equal(on(image, trimap), refined)


def test_bad_settings_fail_clearly(guided, tiny):
    with pytest.raises(ValueError, match="trimap-guided"):
        MattingPredictor(tiny.cfg, device="cpu", refinement=RefinementPolicy(steps=1))
    with pytest.raises(ValueError, match=r"\['alpha_l1'\] cannot be used"):
        RefinementPolicy(losses={"known": 1, "alpha_l1": 1})
    with pytest.raises(ValueError, match="region"):
        RefinementPolicy(region="tiles")
    with pytest.raises(ValueError, match="NAME=WEIGHT"):
        parse_losses("known=1,ddc")
    assert parse_losses("known=1, ddc=10") == {"known": 1.0, "ddc": 10.0}
    # Chosen losses keep the model criterion's kernel size, region, padding and backend.
    criterion = refinement_criterion(guided.model, {"known": 1.0, "dc": 10.0})
    assert (criterion.kernel_size, criterion.backend) == (5, "torch")
    assert criterion.losses == {"known": 1.0, "dc": 10.0}
    assert refinement_criterion(guided.model) is guided.model.criterion
    # A model without a MattingCriterion (an inference-only config) gets the paper's loss.
    assert refinement_criterion(torch.nn.Module()).losses == {"known": 1.0, "ddc": 10.0}


def test_predict_tool_refine_steps(guided, tmp_path, capsys):
    predict = load_script("tools/predict.py")
    image, trimap = photo()
    for folder, array in (("photos", image[:, :, ::-1]), ("trimaps", trimap)):
        (tmp_path / folder).mkdir()
        assert cv2.imwrite(str(tmp_path / folder / "a.png"), array)

    def run(name, *extra):
        out = tmp_path / name
        argv = ["--config-file", guided.config_file, "--input", str(tmp_path / "photos"),
                "--trimap", str(tmp_path / "trimaps"), "--output", str(out), "--no-progress",
                *extra, f"train.init_checkpoint={guided.cfg.train.init_checkpoint}"]  # fmt: skip
        assert predict.main(argv) == 0
        return (out / "alpha" / "a.png").read_bytes()

    today = run("today")
    assert run("zero", "--refine-steps", "0", "--refine-lr", "0.5") == today
    refined = run("refined", "--refine-steps", "3", "--refine-lr", "1e-3", "--refine-seed", "2")
    assert refined != today
    expected = MattingPredictor(guided.cfg, device="cpu").refine(
        image, trimap, steps=3, lr=1e-3, seed=2
    )
    decoded = cv2.imread(str(tmp_path / "refined" / "alpha" / "a.png"), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(decoded, np.rint(expected * 255).astype(np.uint8))
    with pytest.raises(SystemExit):
        predict.main(["--config-file", guided.config_file, "--input", "x", "--output", "y",
                      "--refine-losses", "known"])  # fmt: skip
    assert "NAME=WEIGHT" in capsys.readouterr().err
