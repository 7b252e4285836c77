"""Reference implementations shared by the tests and the benchmarks (as detectron2 keeps
``detectron2/utils/testing.py``): plain formulations that the package's fast code is checked and
timed against. Not imported by the package itself.

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
"""

import numpy as np
import scipy.ndimage
from skimage.measure import label, regionprops

__all__ = ["ref_unknown_region", "ref_whole_image"]

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
