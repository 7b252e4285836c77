"""Neighbour selection for the DDC, DC and affinity losses (paper Sec. 3.1, Fig. 3), and the
choice of backend that runs it.

For each pixel i: the ``K`` pixels j of its K x K window (i itself included) with the smallest
Euclidean RGB distance ||I_i - I_j||, as ``torch.topk`` picks them in the paper's sample code
(Listing 1). When two candidates are equally close either is a valid choice: the backends agree
with Listing 1 on the K selected distances (as a sorted list) at every pixel, and on the selected
set wherever the K-th smallest distance is unique; they do not reproduce ``torch.topk``'s
tie-breaking.

Backends (``backend=`` of :func:`select_neighbours` and of the losses; :mod:`.backends` chooses
and checks them):

- ``"torch"``: the plain formulation (:mod:`.torch_kernels`: K*K-channel unfold, ``torch.norm``,
  ``torch.topk``, in bands of rows above a memory budget); any device. The reference the others
  are tested against, and the fallback.
- ``"numba"``: compiled CPU kernels (:mod:`.cpu_kernels`), one pass per pixel.
- ``"triton"``: fused Triton kernels (:mod:`.triton_kernels`) on CUDA; on CPU tensors the same
  kernels run in Triton's interpreter (slow; for tests).
- ``"auto"``: Triton on CUDA, numba on CPU, each only once its self-check passed on the device,
  else torch (``ALPHAFREE_DDC_BACKEND`` replaces "auto"; see :mod:`.backends`).
"""

from typing import NamedTuple

import torch

from . import torch_kernels
from .backends import index_dtype, kernels, resolve_backend

__all__ = ["PADDINGS", "NeighbourSelection", "select_neighbours"]

PADDINGS = ("zeros", "valid")


class NeighbourSelection(NamedTuple):
    """The ``kernel_size`` most similar neighbours of every pixel in its K x K window.

    Attributes:
        index: (B, K, H, W) uint8 (int16 when K*K > 256): window offset ``ky * K + kx`` of each
            selected neighbour, i.e. the neighbour of pixel (y, x) is (y + ky - K//2,
            x + kx - K//2), ``F.unfold``'s numbering of kernel positions. The order of the K
            entries of a pixel is unspecified (the losses are sums over them).
        distance: (B, K, H, W) float32 (float64 for float64 images): ||I_i - I_j||. ``inf``
            marks a slot without a usable neighbour (``padding="valid"`` on images smaller than
            the window needs); its index is then meaningless.
        kernel_size: K.
        padding: "zeros" or "valid".
    """

    index: torch.Tensor
    distance: torch.Tensor
    kernel_size: int
    padding: str


def select_neighbours(
    image: torch.Tensor, kernel_size: int = 11, padding: str = "zeros", backend: str = "auto"
) -> NeighbourSelection:
    """Select, for every pixel, its ``kernel_size`` nearest pixels in colour within its window.

    Args:
        image: (B, C, H, W) float, RGB in [0, 1] (any finite values work). No gradient flows
            back to it. Half/bfloat16 images (autocast) are selected in float32.
        kernel_size: K, odd >= 1; the window is K x K and K neighbours are kept (the paper
            uses 11).
        padding: "zeros" (the sample code: out-of-image neighbours are black pixels with
            alpha 0) or "valid" (out-of-image positions are never selected). With zeros, a dark
            pixel within K//2 pixels of the border finds the black padding among its most
            similar "pixels", which ties its alpha to 0; "valid" only compares real pixels, and
            every window of an image of at least K//2 + 1 pixels per side has K of them.
        backend: "auto", "torch", "numba" or "triton" (see the module docstring).

    Returns:
        :class:`NeighbourSelection`.
    """
    check_kernel_padding(kernel_size, padding)
    if image.dim() != 4 or not image.is_floating_point() or image.numel() == 0:
        raise ValueError(
            f"select_neighbours: image must be a non-empty float (B, C, H, W) tensor, got "
            f"{tuple(image.shape)} {image.dtype}"
        )
    backend = resolve_backend(backend, image.device)
    with torch.no_grad(), torch.autocast(image.device.type, enabled=False):
        image = image.detach()
        if image.dtype != torch.float64:
            image = image.float()  # distances in float32 (also under autocast)
        image = image.contiguous()
        module = torch_kernels if backend == "torch" else kernels(backend)
        index, distance = module.select(
            image, kernel_size, padding == "valid", index_dtype(kernel_size)
        )
    return NeighbourSelection(index, distance, kernel_size, padding)


def check_kernel_padding(kernel_size, padding):
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, int):
        raise ValueError(f"kernel_size must be an odd int >= 1, got {kernel_size!r}")
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be an odd int >= 1, got {kernel_size!r}")
    if kernel_size * kernel_size > 32768:
        raise ValueError(f"kernel_size {kernel_size} is too large (K*K must fit in int16)")
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
