"""Reference implementations shared by the tests and the benchmarks (as detectron2 keeps
``detectron2/utils/testing.py``): plain formulations that the package's fast code is checked and
timed against. Not imported by the package itself.

DDC family: the paper's Listing 1 and the same K*K-channel unfold formulation for the selection,
DC and affinity (float64 in the tests). Slow and memory-hungry by design: they are the definition
the kernels of :mod:`alphafree_d2.modeling` are checked against.

Matting metrics: the two published evaluation scripts, for ``tests/evaluation`` and
``benchmarks/metrics.py`` (which measures the package against them).

They follow the published definitions literally (same operations, dtypes and loops):

- whole image: ``core/evaluate.py`` of JizhiziLi/GFM and JizhiziLi/P3M, called as in their
  ``core/test.py`` (float64 [0, 1] prediction, ``uint8 / 255.`` ground truth, raw trimap).
- unknown region: ``evaluation.py`` of poppuppy/alpha-free-matting (float32 0..255 arrays as read
  by ``cv2.imread(path, 0).astype(np.float32)``).

The only liberty taken: the whole-image connectivity loop's distance transform, whose result the
script never uses, is computed only with ``unused_distance_transform=True`` (the benchmark's
timing of the published script).

A tiny matting model for the inference and demo-page tests: :data:`TINY_CONFIG` (a LazyConfig
file's text), :func:`randomise` and :func:`random_image`. :func:`load_script` imports a script of
the checkout (``tools/predict.py``, ...) so that tests can call its ``main``.
"""

import math
import textwrap

import numpy as np
import scipy.ndimage
import torch
from skimage.measure import label, regionprops
from torch.nn import functional as F

__all__ = [
    "listing1_ddc",
    "reference_selection",
    "reference_neighbour_alpha",
    "reference_pair_loss",
    "reference_affinity_loss",
    "ref_unknown_region",
    "ref_whole_image",
    "TINY_CONFIG",
    "tiny_config",
    "randomise",
    "random_image",
    "write_image",
    "load_script",
]


def listing1_ddc(image, alpha, kernel_size, return_selection=False):
    """The paper's sample code (Appendix E, Listing 1): unfold, torch.norm, torch.topk, gather,
    l1 mean. image (B, C, H, W), alpha (B, 1, H, W) -> scalar (and, with ``return_selection``,
    the selected distances, sorted, and their window offsets, both (B, K, H, W)))."""
    b, c, h, w = image.shape
    unfold_image = F.unfold(image, kernel_size, padding=kernel_size // 2).view(
        b, c, kernel_size**2, h, w
    )
    image_dist = torch.norm(image.view(b, c, 1, h, w) - unfold_image, 2, dim=1)
    image_dist, indices = torch.topk(image_dist, k=kernel_size, dim=1, largest=False)
    unfold_alpha = F.unfold(alpha, kernel_size, padding=kernel_size // 2).view(
        b, kernel_size**2, h, w
    )
    alpha_dist = torch.gather(alpha - unfold_alpha, dim=1, index=indices)
    loss = F.l1_loss(image_dist, alpha_dist)
    return (loss, image_dist, indices) if return_selection else loss


def reference_selection(image, kernel_size, padding="zeros"):
    """All K*K window distances (B, K*K, H, W) (inf outside the image with "valid") and
    Listing 1's choice: (sorted distances (B, K, H, W), their window offsets)."""
    b, c, h, w = image.shape
    K = kernel_size
    unfolded = F.unfold(image, K, padding=K // 2).view(b, c, K * K, h, w)
    dist = torch.norm(image.view(b, c, 1, h, w) - unfolded, 2, dim=1)
    if padding == "valid":
        ones = torch.ones(1, 1, h, w, dtype=image.dtype, device=image.device)
        inside = F.unfold(ones, K, padding=K // 2).view(1, K * K, h, w) > 0
        dist = dist.masked_fill(~inside, math.inf)
    selected, index = torch.topk(dist, K, dim=1, largest=False)
    return dist, selected, index


def reference_neighbour_alpha(alpha, index, kernel_size):
    """(B, K, H, W) alpha of the neighbours at window offsets ``index`` (0 outside)."""
    b, _, h, w = alpha.shape
    K = kernel_size
    unfolded = F.unfold(alpha, K, padding=K // 2).view(b, K * K, h, w)
    return torch.gather(unfolded, 1, index.long())


def reference_pair_loss(alpha, distance, index, kernel_size, region="whole", trimap=None,
                        directional=True):  # fmt: skip
    """DDC (Eq. 9, ``directional``) or DC (Eq. 8) over a given selection: the mean of the terms
    of the finite-distance pairs (with region="unknown": whose centre is unknown)."""
    alpha_dist = alpha - reference_neighbour_alpha(alpha, index, kernel_size)
    if not directional:
        alpha_dist = alpha_dist.abs()
    keep = torch.isfinite(distance)
    if region == "unknown":
        keep = keep & (trimap == 0.5)
    terms = torch.where(keep, (distance - alpha_dist).abs(), torch.zeros_like(distance))
    return terms.sum() / keep.sum().clamp(min=1)


def reference_affinity_loss(alpha, distance, index, kernel_size):
    """Affinity loss (Eq. 2-4) over a given selection, A = max(0, 1 - d / sqrt(3))."""
    affinity = (1 - distance / math.sqrt(3)).clamp(min=0)
    weights = affinity / affinity.sum(1, keepdim=True)
    smoothed = (weights * reference_neighbour_alpha(alpha, index, kernel_size)).sum(1, keepdim=True)
    return (smoothed - alpha).abs().mean()


# --- whole image (GFM / P3M) ------------------------------------------------------------------


def ref_whole_image(predict, alpha, trimap, unused_distance_transform=False):
    """predict, alpha: float64 (H, W) in [0, 1]; trimap (H, W) 8-bit values."""
    out = {}
    n = predict.shape[0] * predict.shape[1]
    out["SAD"] = np.sum(np.abs(predict - alpha)) / 1000
    out["MSE"] = np.sum((predict - alpha) ** 2) / n
    out["MAD"] = np.sum(np.abs(predict - alpha)) / n

    forced = np.copy(predict)
    unknown = float((trimap == 128).sum())
    forced[trimap == 255] = 1.0
    forced[trimap == 0] = 0.0
    out["SAD-T"] = np.sum(np.abs(forced - alpha)) / 1000
    if unknown == 0:
        unknown = (
            trimap.shape[0] * trimap.shape[1]
            - float((trimap == 255).sum())
            - float((trimap == 0).sum())
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        out["MSE-T"] = np.float64(np.sum((forced - alpha) ** 2)) / unknown if unknown else np.nan

    def mag(x):
        dx = scipy.ndimage.gaussian_filter(x, sigma=1.4, order=[1, 0], output=np.float32)
        dy = scipy.ndimage.gaussian_filter(x, sigma=1.4, order=[0, 1], output=np.float32)
        return np.sqrt(dx**2 + dy**2)

    out["Grad"] = np.sum(np.square(mag(predict) - mag(alpha))) / 10

    h, w = predict.shape
    steps = np.arange(0, 1.1, 0.1)
    l_map = -1 * np.ones((h, w), dtype=np.float32)
    for i in range(1, steps.size):
        both = (predict >= steps[i]) & (alpha >= steps[i])
        regions = regionprops(label(both, connectivity=1))
        areas = np.array([r.area for r in regions])
        if len(areas) == 0:
            continue
        coords = regions[np.argmax(areas)].coords
        omega = np.zeros((h, w), dtype=np.float32)
        omega[coords[:, 0], coords[:, 1]] = 1
        l_map[(l_map == -1) & (omega == 0)] = steps[i - 1]
        if unused_distance_transform:
            dist = scipy.ndimage.distance_transform_edt(omega == 0)
            dist = dist / dist.max()
    l_map[l_map == -1] = 1
    d_p = predict - l_map
    d_g = alpha - l_map
    phi_p = 1 - d_p * (d_p >= 0.15).astype(np.float32)
    phi_g = 1 - d_g * (d_g >= 0.15).astype(np.float32)
    out["Conn"] = np.sum(np.abs(phi_p - phi_g)) / 1000
    return out


# --- unknown region (poppuppy/alpha-free-matting evaluation.py) -------------------------------


def _gauss(x, sigma):
    return np.exp(-(x**2) / (2 * sigma**2)) / (sigma * np.sqrt(2 * np.pi))


def _dgauss(x, sigma):
    return -x * _gauss(x, sigma) / sigma**2


def _gauss_gradient(im, sigma):
    eps = 1e-2
    half = np.ceil(sigma * np.sqrt(-2 * np.log(np.sqrt(2 * np.pi) * sigma * eps))).astype(int)
    size = 2 * half + 1
    hx = np.zeros((size, size))
    for i in range(size):
        for j in range(size):
            hx[i, j] = _gauss(i - half, sigma) * _dgauss(j - half, sigma)
    hx = hx / np.sqrt(np.sum(np.abs(hx) * np.abs(hx)))
    gx = scipy.ndimage.convolve(im, hx, mode="nearest")
    gy = scipy.ndimage.convolve(im, hx.transpose(), mode="nearest")
    return gx, gy


def ref_unknown_region(pred, target, trimap):
    """pred, target, trimap: float32 (H, W) with values 0..255 (trimap 0/128/255)."""
    out = {}
    err = (pred - target) / 255.0
    out["MSE"] = np.sum((err**2) * (trimap == 128)) / (np.sum(trimap == 128) + 1e-8)
    out["SAD"] = np.sum(np.abs((pred - target) / 255.0) * (trimap == 128)) / 1000

    p, t = pred / 255.0, target / 255.0
    px, py = _gauss_gradient(p, 1.4)
    tx, ty = _gauss_gradient(t, 1.4)
    grad_err = (np.sqrt(px**2 + py**2) - np.sqrt(tx**2 + ty**2)) ** 2
    out["Grad"] = np.sum(grad_err[trimap == 128]) / 1000.0

    step = 0.1
    steps = list(np.arange(0, 1 + step, step))
    l_map = np.ones_like(p, dtype=float) * -1
    for i in range(1, len(steps)):
        seg = (p >= steps[i]).astype(int) * (t >= steps[i]).astype(int)
        labels = label(seg, connectivity=1)
        omega = (labels == np.argmax(np.bincount(labels.flat))).astype(int)
        l_map[((l_map == -1) & (omega == 0)).astype(int) == 1] = steps[i - 1]
    l_map[l_map == -1] = 1
    d_p = p - l_map
    d_t = t - l_map
    phi_p = 1 - d_p * (d_p >= 0.15).astype(int)
    phi_t = 1 - d_t * (d_t >= 0.15).astype(int)
    out["Conn"] = np.sum(np.abs(phi_p - phi_t)[trimap == 128]) / 1000.0
    return out


# ---------------------------------------------------------------------------------------------
# A tiny matting model: the demo architecture made smaller (ViT: 2 blocks of width 32, window 4
# with padding, global attention with relative positions, position embedding resized from a 4x4
# grid) so that every size-dependent path of detectron2's ViT is exercised. Relative-position
# tables, position embeddings and BatchNorm statistics are randomised (:func:`randomise`) so
# that they matter to the output.

TINY_CONFIG = textwrap.dedent("""
    from functools import partial

    from torch import nn

    from detectron2.config import LazyCall as L
    from detectron2.modeling.backbone.vit import ViT

    from alphafree_d2.modeling.decoder import DetailCapture
    from alphafree_d2.modeling.meta_arch import ViTMatte

    model = L(ViTMatte)(
        backbone=L(ViT)(
            img_size=128,
            patch_size=16,
            in_chans=3,
            embed_dim=32,
            depth=2,
            num_heads=2,
            mlp_ratio=2,
            qkv_bias=True,
            norm_layer=partial(nn.LayerNorm, eps=1e-6),
            window_size=4,
            window_block_indexes=[0],
            residual_block_indexes=[1],
            use_rel_pos=True,
            pretrain_img_size=64,
            out_feature="last_feat",
        ),
        decoder=L(DetailCapture)(
            in_channels=32, conv_channels=[8, 16, 16], fusion_channels=[16, 16, 8, 8],
            head_channels=8,
        ),
        criterion=L(nn.Identity)(),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
        input_format="RGB",
        size_divisibility=32,
    )
    train = dict(init_checkpoint="", device="auto")
    """)


def tiny_config(in_chans=3, head_channels=8):
    """:data:`TINY_CONFIG` for ``in_chans`` 3 (automatic) or 4 (trimap-guided) and a head width
    (transformers' ViTMatte needs 16)."""
    text = TINY_CONFIG.replace("head_channels=8", f"head_channels={head_channels}")
    if in_chans == 4:
        text = text.replace("in_chans=3", "in_chans=4")
        text = text.replace("in_channels=32, conv", "in_channels=32, image_channels=4, conv")
        text = text.replace('input_format="RGB",', 'input_format="RGB",\n    trimap_input=True,')
    return text


def randomise(model, seed=0):
    """Give the position tables and the BatchNorm statistics random values (in place)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "rel_pos" in name or "pos_embed" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.3)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return model


def random_image(h, w, channels=3, seed=0, dtype=np.uint8):
    """Seeded random image: (h, w) when channels == 1, else (h, w, channels)."""
    rng = np.random.default_rng(seed)
    top = np.iinfo(dtype).max
    shape = (h, w) if channels == 1 else (h, w, channels)
    return rng.integers(0, top + 1, size=shape, dtype=dtype)


def write_image(path, array):
    """Write ``array`` (uint8/uint16, (H, W) or (H, W, C) in OpenCV's BGR order) to ``path`` (a
    pathlib.Path) with OpenCV, creating its folder; returns ``path``."""
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), array):
        raise OSError(f"cv2.imwrite could not write {path}")
    return path


def load_script(relative_path):
    """The checkout's script ``relative_path`` (e.g. ``"tools/predict.py"``) as a fresh module,
    for tests that call its ``main(argv)`` in-process. The checkout is the folder above this
    package (an editable install)."""
    import importlib.util
    import os

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.path.join(root, relative_path)
    name = "script_" + os.path.splitext(relative_path)[0].replace("/", "_")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
