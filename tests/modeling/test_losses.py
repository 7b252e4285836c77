"""alphafree_d2.modeling.losses (default backend) against the plain formulations of
alphafree_d2.utils.testing (float64 unless said), the paper's properties (Eq. 10, Fig. 6,
Sec. 3.1 braking effect), the loss table, the loss head's policies and autocast. The compiled
backends one by one: test_neighbour_kernels.py."""

import math

import pytest
import torch
import torch.nn.functional as F

from alphafree_d2.modeling import losses as L
from alphafree_d2.utils.testing import (
    listing1_ddc,
    reference_affinity_loss,
    reference_pair_loss,
    reference_selection,
)

INF = math.inf


def ref_selection(image, K, padding="zeros"):
    _, distance, index = reference_selection(image, K, padding)
    return distance, index


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------
def make_image(kind, b, h, w, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    image = torch.rand(b, 3, h, w, generator=gen, dtype=dtype)
    if kind == "quantised":  # 8-bit colours: many exactly equal distances
        image = (image * 6).round() / 6
    elif kind == "flat":  # flat regions, a flat dark border strip (ties with the zero padding)
        image = (image * 255).round() / 255
        image[:, :, h // 4 : 3 * h // 4, w // 4 :] = 0.5
        image[:, :, :, : max(1, w // 5)] = 0.0
    elif kind == "dark":  # dark colours: the zero padding is among the nearest
        image = image * 0.05
    elif kind != "random":
        raise ValueError(kind)
    return image


def make_trimap(b, h, w, seed=1, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randint(0, 3, (b, 1, h, w), generator=gen) / 2).to(dtype)


# B, H, W, K: odd, non-square, smaller than K in one or both dimensions, B > 1
SIZES = [(2, 7, 9, 5), (1, 13, 6, 11), (3, 4, 4, 11), (2, 17, 23, 7), (1, 1, 5, 3), (2, 12, 10, 1)]
KINDS = ["random", "quantised", "flat", "dark"]


# ---------------------------------------------------------------------------------------------
# Selection
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("padding", ["zeros", "valid"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("size", SIZES)
def test_selection_matches_listing1(size, kind, padding):
    # Issue 13: the same sorted distances everywhere; the same set where the K-th is unique
    # (ties may break differently from torch.topk).
    b, h, w, K = size
    for dtype in (torch.float64, torch.float32):
        image = make_image(kind, b, h, w, dtype=dtype)
        selection = L.select_neighbours(image, K, padding)
        candidates, ref_dist, ref_index = reference_selection(image, K, padding)
        assert selection.index.dtype == torch.uint8 and selection.index.shape == (b, K, h, w)
        torch.testing.assert_close(selection.distance.sort(1).values, ref_dist, rtol=0, atol=1e-6)
        ordered = candidates.sort(1).values
        if K * K > K:
            unique = (ordered[:, K] - ordered[:, K - 1] > 1e-6)[:, None].expand_as(ref_index)
            same = selection.index.long().sort(1).values == ref_index.sort(1).values
            assert same[unique].all()


def test_selection_is_deterministic():
    image = make_image("flat", 3, 21, 19, dtype=torch.float32)
    image[1] = make_image("random", 1, 21, 19, dtype=torch.float32)[0]
    first = L.select_neighbours(image, 7)
    for _ in range(3):
        again = L.select_neighbours(image, 7)
        assert torch.equal(again.index, first.index) and torch.equal(again.distance, first.distance)


def test_selection_on_flat_images_and_large_kernels():
    # all K*K distances equal, partly equal, and K*K > 256 (int16 offsets)
    for K, h, w in [(11, 14, 15), (3, 5, 6), (17, 20, 19)]:
        image = torch.full((2, 3, h, w), 0.25, dtype=torch.float32)
        image[1, :, :, w // 2 :] = 0.75
        selection = L.select_neighbours(image, K)
        ref_dist, _ = ref_selection(image, K)
        torch.testing.assert_close(selection.distance.sort(1).values, ref_dist, rtol=0, atol=1e-6)
    assert selection.index.dtype == torch.int16


def test_selection_under_autocast_equals_float32():
    image = make_image("quantised", 2, 16, 12, dtype=torch.float32)
    plain = L.select_neighbours(image, 7)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        autocast = L.select_neighbours(image, 7)
    assert autocast.distance.dtype == torch.float32
    assert torch.equal(autocast.index, plain.index)
    assert torch.equal(autocast.distance, plain.distance)


def test_valid_padding_has_k_neighbours_from_k_half_plus_one_pixels():
    for K in (3, 5, 11):
        p = K // 2
        image = make_image("dark", 1, p + 1, p + 2)
        assert torch.isfinite(L.select_neighbours(image, K, "valid").distance).all()
    # a 1 x 2 image has 2 pixels: K - 2 slots of each window stay empty (inf)
    distance = L.select_neighbours(make_image("random", 1, 1, 2), 5, "valid").distance
    assert torch.isinf(distance).sum(1).tolist() == [[[3, 3]]]


def test_selection_errors():
    image = torch.rand(1, 3, 8, 8)
    with pytest.raises(ValueError, match="odd"):
        L.select_neighbours(image, 4)
    with pytest.raises(ValueError, match="padding"):
        L.select_neighbours(image, 5, "reflect")
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        L.select_neighbours(image[0], 5)


# ---------------------------------------------------------------------------------------------
# Losses: values and gradients against the plain formulations
# ---------------------------------------------------------------------------------------------
def value_and_grad(fn, alpha):
    alpha = alpha.detach().clone().requires_grad_(True)
    value = fn(alpha)
    (grad,) = torch.autograd.grad(value, alpha)
    return value.detach(), grad


def assert_same(fast, ref):
    (value, grad), (ref_value, ref_grad) = fast, ref
    torch.testing.assert_close(value, ref_value, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("kind", ["random", "dark"])  # tie-free (but for the zero padding)
@pytest.mark.parametrize("size", SIZES)
def test_ddc_default_is_listing1(size, kind):
    # Ties among the zero padding's black pixels do not matter: they have the same distance and
    # alpha. Tie-heavy images: test_pair_losses (on the selection made) and test_neighbour_kernels.
    b, h, w, K = size
    image = make_image(kind, b, h, w)
    alpha = torch.rand(b, 1, h, w, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    fast = value_and_grad(lambda a: L.ddc_loss(image, a, K), alpha)
    assert_same(fast, value_and_grad(lambda a: listing1_ddc(image, a, K), alpha))


@pytest.mark.parametrize("region", ["whole", "unknown"])
@pytest.mark.parametrize("padding", ["zeros", "valid"])
@pytest.mark.parametrize("kind", ["random", "flat"])
@pytest.mark.parametrize("size", SIZES)
def test_pair_losses(size, kind, padding, region):
    b, h, w, K = size
    image = make_image(kind, b, h, w)
    alpha = torch.rand(b, 1, h, w, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    trimap = make_trimap(b, h, w)
    i, d = L.select_neighbours(image, K, padding)[:2]  # its own choice among ties
    for directional, fn in ((True, L.ddc_loss), (False, L.dc_loss)):
        fast = value_and_grad(
            lambda a: fn(image, a, K, padding=padding, region=region, trimap=trimap), alpha
        )
        ref = value_and_grad(
            lambda a: reference_pair_loss(a, d, i, K, region, trimap, directional), alpha
        )
        assert_same(fast, ref)


@pytest.mark.parametrize("padding", ["zeros", "valid"])
@pytest.mark.parametrize("kind", ["random", "flat"])
@pytest.mark.parametrize("size", SIZES)
def test_affinity_loss(size, kind, padding):
    b, h, w, K = size
    image = make_image(kind, b, h, w)
    alpha = torch.rand(b, 1, h, w, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    fast = value_and_grad(lambda a: L.affinity_loss(image, a, K, padding=padding), alpha)
    i, d = L.select_neighbours(image, K, padding)[:2]
    assert_same(fast, value_and_grad(lambda a: reference_affinity_loss(a, d, i, K), alpha))


def test_unknown_region_without_unknown_pixels_is_zero_with_gradient():
    image = make_image("random", 1, 6, 6)
    alpha = torch.rand(1, 1, 6, 6, dtype=torch.float64, requires_grad=True)
    loss = L.ddc_loss(image, alpha, 3, region="unknown", trimap=torch.ones_like(alpha))
    loss.backward()
    assert loss.item() == 0 and torch.equal(alpha.grad, torch.zeros_like(alpha))
    with pytest.raises(ValueError, match="needs the trimap"):
        L.ddc_loss(image, alpha, 3, region="unknown")


def test_known_and_label_losses():
    gen = torch.Generator().manual_seed(5)
    alpha = torch.rand(2, 1, 6, 7, generator=gen, dtype=torch.float64, requires_grad=True)
    trimap = make_trimap(2, 6, 7)
    known = (trimap == 0) | (trimap == 1)
    expected = (alpha - trimap).abs()[known].mean()  # = l1 mean * N / N_known
    torch.testing.assert_close(L.known_loss(alpha, trimap), expected)
    torch.testing.assert_close(L.mask_l1_loss(alpha, trimap), expected)  # 0.5 ignored
    bce = F.binary_cross_entropy(alpha[known], trimap[known])
    torch.testing.assert_close(L.mask_bce_loss(alpha, trimap), bce)
    gt = torch.rand(2, 1, 6, 7, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(L.alpha_l1_loss(alpha, gt), (alpha - gt).abs().mean())
    for fn in (L.known_loss, L.mask_l1_loss, L.mask_bce_loss):
        assert torch.autograd.gradcheck(lambda a: fn(a, trimap), (alpha,))
    assert torch.autograd.gradcheck(lambda a: L.alpha_l1_loss(a, gt), (alpha,))
    # nothing known: zero, with a (zero) gradient
    loss = L.known_loss(alpha, torch.full_like(trimap, 0.5))
    loss.backward()
    assert loss.item() == 0 and torch.equal(alpha.grad, torch.zeros_like(alpha))
    with pytest.raises(ValueError, match="does not match"):
        L.known_loss(alpha, trimap[:, :, :5])


def test_losses_under_autocast_bfloat16():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 1, 3, padding=1)
    image = make_image("quantised", 2, 12, 10, dtype=torch.float32)
    trimap = make_trimap(2, 12, 10, dtype=torch.float32)
    criterion = L.MattingCriterion(
        {"known": 1.0, "ddc": 10.0, "dc": 1.0, "affinity": 1.0, "mask_bce": 1.0}, kernel_size=5
    )
    with torch.autocast("cpu", dtype=torch.bfloat16):
        alpha = torch.sigmoid(conv(image))
        assert alpha.dtype == torch.bfloat16
        losses = criterion(alpha, image, trimap)
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert conv.weight.grad is not None and torch.isfinite(conv.weight.grad).all()
    # same values as float32 on the same (bfloat16-rounded) prediction
    reference = criterion(alpha.detach().float(), image, trimap)
    for name, value in losses.items():
        torch.testing.assert_close(value.detach(), reference[name])


# ---------------------------------------------------------------------------------------------
# Loss head
# ---------------------------------------------------------------------------------------------
# The loss policies of the paper's tables (lambda = 10 for DC/DDC, Sec. 4.1; the affinity weight
# is ours), as ``configs/ablations/`` sets them (tests/config/test_configs.py checks the configs).
PAPER_POLICIES = {
    "alpha_l1": {"losses": {"alpha_l1": 1.0}},  # Table 1 row 1
    "known": {"losses": {"known": 1.0}},  # Table 4 row 1
    "known_affinity": {"losses": {"known": 1.0, "affinity": 10.0}},  # Table 4 row 2
    "known_dc": {"losses": {"known": 1.0, "dc": 10.0}},  # Table 4 row 3, Table 5 "whole"
    "known_ddc": {"losses": {"known": 1.0, "ddc": 10.0}},  # Table 4 row 4, Table 1 row 2, Eq. 11
    "known_dc_unknown": {"losses": {"known": 1.0, "dc": 10.0}, "region": "unknown"},  # Table 5
    "known_ddc_unknown": {"losses": {"known": 1.0, "ddc": 10.0}, "region": "unknown"},  # Table 5
    "mask_l1_ddc": {"losses": {"mask_l1": 1.0, "ddc": 10.0}},  # Table 7 row 1
    "mask_bce_ddc": {"losses": {"mask_bce": 1.0, "ddc": 10.0}},  # Table 7 row 2
}


def test_criterion_paper_policies():
    image = make_image("random", 2, 9, 8, dtype=torch.float32)
    trimap = make_trimap(2, 9, 8, dtype=torch.float32)
    gen = torch.Generator().manual_seed(6)
    pred = torch.rand(2, 1, 9, 8, generator=gen)
    gt = torch.rand(2, 1, 9, 8, generator=gen)
    mask = (trimap > 0.25).float()
    functions = {
        "known": lambda p, t, **kw: L.known_loss(p, t),
        "mask_l1": lambda p, t, **kw: L.mask_l1_loss(p, t),
        "mask_bce": lambda p, t, **kw: L.mask_bce_loss(p, t),
        "alpha_l1": lambda p, t, **kw: L.alpha_l1_loss(p, gt),
        "ddc": lambda p, t, **kw: L.ddc_loss(image, p, 11, trimap=t, **kw),
        "dc": lambda p, t, **kw: L.dc_loss(image, p, 11, trimap=t, **kw),
        "affinity": lambda p, t, **kw: L.affinity_loss(image, p, 11),
    }
    for name, policy in PAPER_POLICIES.items():
        criterion = L.MattingCriterion(**policy)
        label = mask if name.startswith("mask") else trimap
        losses = criterion(pred, image, label, gt)
        assert set(losses) == {f"loss_{n}" for n in policy["losses"]}, name
        region = policy.get("region", "whole")
        for loss_name, weight in policy["losses"].items():
            kwargs = {"region": region} if loss_name in ("ddc", "dc") else {}
            value = functions[loss_name](pred, label, **kwargs)
            torch.testing.assert_close(losses[f"loss_{loss_name}"], weight * value)
    # the paper's default: L_known + 10 L_DDC, K = 11 (Eq. 11)
    default = L.MattingCriterion(**PAPER_POLICIES["known_ddc"])
    assert default.losses == {"known": 1.0, "ddc": 10.0} and default.kernel_size == 11


def test_loss_table_drives_the_criterion(monkeypatch):
    """Adding a loss is one entry of LOSSES: the criterion accepts, computes and logs it, and
    computes the selection only when an entry needs it."""
    assert set(L.LOSSES) == {"known", "ddc", "dc", "affinity", "mask_l1", "mask_bce", "alpha_l1"}
    for name, entry in L.LOSSES.items():
        assert set(entry.needs) <= {"selection", "trimap", "mask", "alpha"}, name
    seen = []
    entry = L.LossEntry(lambda p, x: seen.append(x) or (p - x.alpha).square().mean(), ("alpha",),
                        "a test's own loss")  # fmt: skip
    monkeypatch.setitem(L.LOSSES, "alpha_l2", entry)
    pred, gt = torch.rand(1, 1, 6, 6), torch.rand(1, 1, 6, 6)
    out = L.MattingCriterion({"alpha_l2": 2.0})(
        pred, torch.rand(1, 3, 6, 6), torch.zeros_like(pred), gt
    )
    assert list(out) == ["loss_alpha_l2"] and seen[0].selection is None
    torch.testing.assert_close(out["loss_alpha_l2"], 2 * (pred - gt).square().mean())
    with pytest.raises(ValueError, match="needs ground-truth alpha"):
        L.MattingCriterion({"alpha_l2": 1.0})(pred, torch.rand(1, 3, 6, 6), torch.zeros_like(pred))


def test_criterion_policies_from_a_lazy_config():
    from detectron2.config import LazyCall, instantiate

    for policy in PAPER_POLICIES.values():
        criterion = instantiate(LazyCall(L.MattingCriterion)(**policy, kernel_size=7))
        assert criterion.losses == policy["losses"] and criterion.kernel_size == 7
        assert criterion.region == policy.get("region", "whole")


def test_criterion_shares_one_selection(monkeypatch):
    calls = []
    select = L.select_neighbours
    monkeypatch.setattr(L, "select_neighbours", lambda *a, **k: calls.append(1) or select(*a, **k))
    image = make_image("random", 1, 8, 8, dtype=torch.float32)
    trimap = make_trimap(1, 8, 8, dtype=torch.float32)
    criterion = L.MattingCriterion({"ddc": 1.0, "dc": 1.0, "affinity": 1.0}, 5, padding="valid")
    criterion(torch.rand(1, 1, 8, 8), image, trimap)
    assert len(calls) == 1


def test_criterion_zero_weight_switches_a_loss_off(monkeypatch):
    # What `model.criterion.losses.ddc=0 model.criterion.losses.dc=10` on the command line does.
    calls = []
    monkeypatch.setattr(L, "ddc_loss", lambda *a, **k: calls.append(1))
    criterion = L.MattingCriterion({"known": 1.0, "ddc": 0, "dc": 10.0}, 5)
    out = criterion(torch.rand(1, 1, 8, 8), torch.rand(1, 3, 8, 8), torch.zeros(1, 1, 8, 8))
    assert sorted(out) == ["loss_dc", "loss_known"] and not calls
    with pytest.raises(ValueError, match="every loss weight is zero"):
        L.MattingCriterion({"known": 0.0})


def test_criterion_errors():
    with pytest.raises(ValueError, match="unknown loss names"):
        L.MattingCriterion({"known": 1.0, "ddc_loss": 10.0})
    with pytest.raises(ValueError, match="finite number"):
        L.MattingCriterion({"known": "1"})
    # issue 11: a negative weight would maximise the loss; the error names the setting
    for bad in (-1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match=r"model\.criterion\.losses\.ddc.*>= 0"):
            L.MattingCriterion({"known": 1.0, "ddc": bad})
    with pytest.raises(ValueError, match="region"):
        L.MattingCriterion({"ddc": 1.0}, region="band")
    with pytest.raises(ValueError, match="odd"):
        L.MattingCriterion({"ddc": 1.0}, kernel_size=10)
    criterion = L.MattingCriterion(PAPER_POLICIES["alpha_l1"]["losses"])
    with pytest.raises(ValueError, match="needs ground-truth alpha"):
        criterion(torch.rand(1, 1, 4, 4), torch.rand(1, 3, 4, 4), torch.zeros(1, 1, 4, 4))


# ---------------------------------------------------------------------------------------------
# The paper's analysis as properties
# ---------------------------------------------------------------------------------------------
def test_eq10_pair_inequality():
    """Two pixels at colour distance D (each selects itself and the other): the pair's two DDC
    terms sum to >= 2D, with equality exactly when |a_i - a_j| <= D; DC's two terms reach their
    minimum only at |a_i - a_j| = D."""
    D = 0.25  # exact: sqrt(0.25 ** 2)
    image = torch.tensor([[0.5, 0.5], [0.25, 0.25], [0.25, 0.25 + D]], dtype=torch.float64)
    selection = L.select_neighbours(image[None, :, None], 3, "valid")  # 1 x 2 pixels
    distances = selection.distance[0, :, 0].sort(0).values  # (3 slots, 2 pixels)
    assert distances.tolist() == [[0, 0], [D, D], [INF, INF]]
    for delta in torch.linspace(-1, 1, 81, dtype=torch.float64):
        alpha = torch.tensor([0.5 + delta / 2, 0.5 - delta / 2], dtype=torch.float64)
        alpha = alpha.view(1, 1, 1, 2).requires_grad_(True)
        pair = 4 * L.ddc_loss(None, alpha, 3, padding="valid", selection=selection)  # 4 terms
        pair_dc = 4 * L.dc_loss(None, alpha, 3, padding="valid", selection=selection)
        if abs(delta) <= D:
            assert pair.item() == pytest.approx(2 * D, abs=1e-12)
        else:
            assert pair.item() == pytest.approx(2 * abs(delta.item()), abs=1e-12)
            assert pair.item() > 2 * D
        assert pair_dc.item() == pytest.approx(2 * abs(abs(delta.item()) - D), abs=1e-12)


def _optimise_free_alpha(image, trimap, loss_fn, kernel_size, weight, steps=400, lr=0.02):
    """Adam on a free alpha map (clamped to [0, 1]) from a seeded random start:
    L_known + weight * loss_fn, with the selection made once."""
    selection = L.select_neighbours(image, kernel_size)
    alpha = torch.rand(trimap.shape, generator=torch.Generator().manual_seed(0))
    alpha.requires_grad_(True)
    optimizer = torch.optim.Adam([alpha], lr=lr)
    for _ in range(steps):
        pair = loss_fn(None, alpha, kernel_size, selection=selection)
        loss = L.known_loss(alpha, trimap) + weight * pair
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            alpha.clamp_(0, 1)
    return alpha.detach()[0, 0]


def _textured_foreground():
    """A 20x20 textured foreground (uniform noise of +-0.15 per channel around one colour),
    known (trimap 1) inside, on a flat background (trimap 0) with an unknown band between."""
    gen = torch.Generator().manual_seed(0)
    image = torch.tensor([0.1, 0.2, 0.8]).view(1, 3, 1, 1).repeat(1, 1, 32, 32)
    texture = torch.tensor([0.8, 0.6, 0.3]).view(1, 3, 1, 1) + 0.3 * (
        torch.rand(1, 3, 32, 32, generator=gen) - 0.5
    )
    image[:, :, 6:26, 6:26] = texture[:, :, 6:26, 6:26]
    trimap = torch.zeros(1, 1, 32, 32)
    trimap[..., 3:29, 3:29] = 0.5
    trimap[..., 9:23, 9:23] = 1.0
    return image, trimap, (slice(10, 22), slice(10, 22))


def test_ddc_keeps_known_textured_foreground_constant_dc_prints_texture():
    """Fig. 6 / Sec. 3.3 on a free alpha map: with known + DDC the known textured foreground
    stays constant, with known + DC the texture shows in alpha.

    Holds with L_known + 1 * L_pair (seen: variance 1e-7 vs 4e-6 to 7e-5 over several scenes).
    It does NOT hold at the paper's weight 10 on a free alpha map: there DDC prints the texture
    about as much as DC (variance ratio DC / DDC 0.8 to 2.7 over scenes, K = 7 and 11). The
    reason is that K-nearest-neighbour selection is not symmetric (here ~20-26 % of the selected
    pairs (i, j) do not have i among j's neighbours), and Eq. 10's bound assumes symmetric pairs:
    an asymmetric term |a_i - a_j - d| is minimal at a_i = a_j + d, not at a constant alpha.
    The second half of this test records that observation.
    """
    image, trimap, inside = _textured_foreground()
    ddc = _optimise_free_alpha(image, trimap, L.ddc_loss, 7, weight=1.0)[inside]
    dc = _optimise_free_alpha(image, trimap, L.dc_loss, 7, weight=1.0)[inside]
    assert ddc.var() < 1e-6 and ddc.mean() > 0.999
    assert dc.var() > 10 * ddc.var()
    ddc_paper_weight = _optimise_free_alpha(image, trimap, L.ddc_loss, 7, weight=10.0)[inside]
    assert ddc_paper_weight.var() > 1e-4  # seen: 1.9e-3 (DC: 3.2e-3)


def test_braking_effect_affinity_vs_ddc():
    """Sec. 3.1, Fig. 4: a one-pixel hair of the body's colour leaves the body (known
    foreground) into a different background; the hair lies in the unknown region. Known +
    affinity lets alpha decay along the hair, known + DDC carries it to the tip."""
    body, background = torch.tensor([0.9, 0.8, 0.1]), torch.tensor([0.1, 0.2, 0.8])
    image = background.view(1, 3, 1, 1).repeat(1, 1, 21, 64)
    image[:, :, :, :16] = body.view(1, 3, 1, 1)
    image[0, :, 10, 16:56] = body.view(3, 1)  # the hair: row 10, columns 16..55
    trimap = torch.zeros(1, 1, 21, 64)
    trimap[..., :, :12] = 1.0
    trimap[..., 4:17, 12:] = 0.5
    affinity = _optimise_free_alpha(image, trimap, L.affinity_loss, 11, weight=10.0)[10, 16:56]
    ddc = _optimise_free_alpha(image, trimap, L.ddc_loss, 11, weight=10.0)[10, 16:56]
    # seen: affinity 0.8 (0.99 with torch.topk's tie-breaking: the image is flat colours, all
    # ties) at the root decaying to 0.3-0.4 at the tip; DDC 1.0 all along
    assert affinity[:4].mean() > affinity[-4:].mean() + 0.3 and affinity[-4:].mean() < 0.5
    assert ddc.min() > 0.95
    assert ddc[20:].mean() > affinity[20:].mean() + 0.3
