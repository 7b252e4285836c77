"""The compiled backends of the DDC family (numba on CPU, Triton interpreted on CPU, Triton on
CUDA) against the plain Listing-1 formulation of alphafree_d2.utils.testing.

Exactness (issue 13): per pixel the K selected distances equal Listing 1's as a sorted list;
where the K-th smallest distance is unique the selected set equals Listing 1's; the losses'
values and gradients equal the plain formulation's on the same selection, and Listing 1's on
tie-free images.
"""

import pytest
import torch

from alphafree_d2.modeling import losses as L
from alphafree_d2.modeling import triton_kernels
from alphafree_d2.utils.testing import (
    listing1_ddc,
    reference_affinity_loss,
    reference_pair_loss,
    reference_selection,
)

CUDA = pytest.mark.cuda
# (backend, device): the Triton interpreter is slow, so its cases use tiny images only.
BACKENDS = [
    pytest.param("numba", "cpu", id="numba"),
    pytest.param("triton", "cpu", id="triton-interpreted"),
    pytest.param("triton", "cuda", id="triton-cuda", marks=CUDA),
]


def skip_unusable(backend, device):
    if backend == "triton" and device == "cpu" and not triton_kernels.INTERPRETED:
        pytest.skip("Triton was imported compiled (CUDA machine): the cuda cases cover it")


def make_image(kind, b, h, w, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    image = torch.rand(b, 3, h, w, generator=gen, dtype=dtype)
    if kind == "quantised":  # few colours: many exactly equal distances
        image = (image * 6).round() / 6
    elif kind == "flat":  # 8-bit colours, a flat area, a flat black strip (ties with the padding)
        image = (image * 255).round() / 255
        image[:, :, h // 4 : 3 * h // 4, w // 4 :] = 0.5
        image[:, :, :, : max(1, w // 5)] = 0.0
    elif kind == "dark":  # the zero padding is among the nearest
        image = image * 0.05
    return image


def check_selection(selection, image, K, padding):
    candidates, ref_distance, ref_index = reference_selection(image.double().cpu(), K, padding)
    distance, index = selection.distance.double().cpu(), selection.index.long().cpu()
    assert selection.index.dtype == (torch.uint8 if K * K <= 256 else torch.int16)
    assert index.shape == ref_index.shape and index.min() >= 0 and index.max() < K * K
    torch.testing.assert_close(distance.sort(1).values, ref_distance, rtol=0, atol=1e-6)
    # the selected distances are those of the selected offsets
    finite = torch.isfinite(distance)
    torch.testing.assert_close(
        torch.gather(candidates, 1, index)[finite], distance[finite], rtol=0, atol=1e-6
    )
    # where the K-th smallest distance is unique, the set is Listing 1's
    ordered = candidates.sort(1).values
    if K * K > K:
        unique = (ordered[:, K] - ordered[:, K - 1] > 1e-6)[:, None].expand_as(index)
        same = index.sort(1).values == ref_index.sort(1).values
        assert same[unique].all()


SIZES = [(1, 13, 17, 5), (2, 5, 6, 11), (1, 6, 7, 15), (1, 4, 6, 5), (1, 1, 5, 3)]


@pytest.mark.parametrize("padding", ["zeros", "valid"])
@pytest.mark.parametrize("kind", ["random", "quantised", "flat", "dark"])
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("backend,device", BACKENDS)
def test_selection(backend, device, size, kind, padding):
    skip_unusable(backend, device)
    b, h, w, K = size
    interpreted = device == "cpu" and backend == "triton"  # slow: float64 in the loss tests
    for dtype in (torch.float32,) if interpreted else (torch.float32, torch.float64):
        image = make_image(kind, b, h, w, dtype=dtype).to(device)
        selection = L.select_neighbours(image, K, padding, backend=backend)
        assert selection.distance.dtype == dtype
        check_selection(selection, image, K, padding)


def value_and_grad(fn, alpha):
    alpha = alpha.detach().clone().requires_grad_(True)
    value = fn(alpha)
    (grad,) = torch.autograd.grad(value, alpha)
    return value.detach().cpu(), grad.cpu()


def assert_same(fast, ref, tol=1e-10):
    torch.testing.assert_close(fast[0], ref[0], rtol=tol, atol=tol)
    torch.testing.assert_close(fast[1], ref[1], rtol=tol, atol=tol)


@pytest.mark.parametrize("padding", ["zeros", "valid"])
@pytest.mark.parametrize("kind", ["random", "quantised", "flat"])
@pytest.mark.parametrize("size", [(1, 13, 17, 5), (2, 5, 6, 11), (1, 6, 5, 15)])
@pytest.mark.parametrize("backend,device", BACKENDS)
def test_losses_on_the_same_selection(backend, device, size, kind, padding):
    """Values and gradients of DDC, DC (whole and unknown region) and affinity equal the plain
    formulation on the backend's own selection (tie-heavy images included), in float64."""
    skip_unusable(backend, device)
    b, h, w, K = size
    gen = torch.Generator().manual_seed(2)
    image = make_image(kind, b, h, w).to(device)
    alpha = torch.rand(b, 1, h, w, dtype=torch.float64, generator=gen).to(device)
    trimap = (torch.randint(0, 3, (b, 1, h, w), generator=gen) / 2).double().to(device)
    s = L.select_neighbours(image, K, padding, backend=backend)
    d, i = s.distance.cpu(), s.index.cpu()
    for region in ("whole", "unknown"):
        for directional, fn in ((True, L.ddc_loss), (False, L.dc_loss)):
            fast = value_and_grad(lambda a: fn(None, a, K, padding=padding, region=region,
                                               trimap=trimap, selection=s, backend=backend), alpha)  # fmt: skip
            ref = value_and_grad(lambda a: reference_pair_loss(a, d, i, K, region, trimap.cpu(),
                                                               directional), alpha.cpu())  # fmt: skip
            assert_same(fast, ref)
    fast = value_and_grad(
        lambda a: L.affinity_loss(None, a, K, padding=padding, selection=s, backend=backend), alpha
    )
    assert_same(fast, value_and_grad(lambda a: reference_affinity_loss(a, d, i, K), alpha.cpu()))


@pytest.mark.parametrize("K", [5, 11, 15])
@pytest.mark.parametrize("backend,device", BACKENDS + [pytest.param("torch", "cpu", id="torch")])
def test_ddc_is_listing1_on_tie_free_images(backend, device, K):
    skip_unusable(backend, device)
    gen = torch.Generator().manual_seed(K)
    image = torch.rand(1, 3, 9, 13, dtype=torch.float64, generator=gen).to(device)
    alpha = torch.rand(1, 1, 9, 13, dtype=torch.float64, generator=gen).to(device)
    fast = value_and_grad(lambda a: L.ddc_loss(image, a, K, backend=backend), alpha)
    assert_same(fast, value_and_grad(lambda a: listing1_ddc(image.cpu(), a, K), alpha.cpu()), 1e-6)


def test_gradcheck_numba():
    gen = torch.Generator().manual_seed(4)
    image = make_image("random", 2, 3, 4)
    trimap = (torch.randint(0, 3, (2, 1, 3, 4), generator=gen) / 2).double()
    alpha = torch.rand(2, 1, 3, 4, dtype=torch.float64, generator=gen).requires_grad_(True)
    for padding in ("zeros", "valid"):
        s = L.select_neighbours(image, 3, padding, backend="numba")
        kw = dict(padding=padding, selection=s, backend="numba")
        for fn in (
            lambda a: L.ddc_loss(None, a, 3, **kw),
            lambda a: L.dc_loss(None, a, 3, **kw),
            lambda a: L.ddc_loss(None, a, 3, region="unknown", trimap=trimap, **kw),
            lambda a: L.affinity_loss(None, a, 3, **kw),
        ):
            assert torch.autograd.gradcheck(fn, (alpha,), eps=1e-7, atol=1e-6)


@pytest.mark.parametrize(
    "backend,device,dtype",
    [
        pytest.param("numba", "cpu", torch.bfloat16, id="numba-bf16"),
        pytest.param("triton", "cpu", torch.bfloat16, id="triton-interpreted-bf16"),
        pytest.param("triton", "cuda", torch.float16, id="triton-cuda-fp16", marks=CUDA),
        pytest.param("triton", "cuda", torch.bfloat16, id="triton-cuda-bf16", marks=CUDA),
    ],
)
def test_autocast(backend, device, dtype):
    """Under autocast the selection runs in float32 and the losses return float32 values equal
    to float32 on the same (rounded) prediction."""
    skip_unusable(backend, device)
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 1, 3, padding=1).to(device)
    image = make_image("flat", 2, 12, 10, dtype=torch.float32).to(device)
    trimap = (torch.arange(120).view(1, 1, 12, 10).repeat(2, 1, 1, 1) % 3 / 2).to(device)
    criterion = L.MattingCriterion(
        {"known": 1.0, "ddc": 10.0, "dc": 1.0, "affinity": 1.0}, kernel_size=5, backend=backend
    )
    with torch.autocast(device, dtype=dtype):
        alpha = torch.sigmoid(conv(image.to(dtype)))
        assert alpha.dtype == dtype
        losses = criterion(alpha, image.to(dtype), trimap)
        selection = L.select_neighbours(image.to(dtype), 5, backend=backend)
    assert selection.distance.dtype == torch.float32
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert torch.isfinite(conv.weight.grad).all()
    reference = criterion(alpha.detach().float(), image.to(dtype).float(), trimap)
    for name, value in losses.items():
        torch.testing.assert_close(value.detach(), reference[name])


def test_numba_is_deterministic():
    image = make_image("flat", 3, 21, 19, dtype=torch.float32)
    alpha = torch.rand(3, 1, 21, 19, generator=torch.Generator().manual_seed(1))
    first = L.select_neighbours(image, 7, backend="numba")
    grads = []
    for threads in (1, 2):
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            again = L.select_neighbours(image, 7, backend="numba")
            grads.append(value_and_grad(lambda a: L.ddc_loss(image, a, 7, backend="numba"), alpha))
        finally:
            torch.set_num_threads(previous)
        assert torch.equal(again.index, first.index) and torch.equal(again.distance, first.distance)
    assert torch.equal(grads[0][0], grads[1][0]) and torch.equal(grads[0][1], grads[1][1])


def test_backend_errors():
    image = torch.rand(1, 3, 8, 8)
    with pytest.raises(ValueError, match="backend must be one of"):
        L.select_neighbours(image, 5, backend="cuda")
    with pytest.raises(ValueError, match="backend must be one of"):
        L.ddc_loss(image, torch.rand(1, 1, 8, 8), 5, backend="fast")
    with pytest.raises(ValueError, match="backend must be one of"):
        L.MattingCriterion({"ddc": 1.0}, backend="gpu")
