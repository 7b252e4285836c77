"""Which backend runs the DDC family (selection, DDC, DC, affinity) on a device, and the proof
that it works there before it is trusted.

Backends: "torch" (:mod:`..torch_kernels`, the plain formulation, any device), "numba"
(:mod:`..cpu_kernels`, CPU), "triton" (:mod:`..triton_kernels`, CUDA; interpreted on CPU
tensors for tests). "auto" (the default) picks, per device and once per process:

- CUDA: Triton, if :func:`check_backend` passed on that device;
- CPU: numba, if :func:`check_backend` passed;
- otherwise, and on other devices, the torch backend. When a candidate was turned down, one
  warning in the log says why (not installed, a kernel that failed to compile or launch, or
  values that differ from the torch backend's).

The environment variable ``ALPHAFREE_DDC_BACKEND=auto|torch|numba|triton`` replaces "auto"
(a backend named in the config, ``model.criterion.backend``, still wins); a named backend is used
as asked, without a self-check. With ``torch.use_deterministic_algorithms(True)`` the Triton loss
kernels, whose backward adds with float atomics, give way to the torch backend (see
:func:`loss_backend`); numba's backward is deterministic (no shared accumulator, independent of
the thread count) and stays.

``python -m alphafree_d2.modeling.backends`` prints each backend's state on this machine.
"""

import functools
import importlib.util
import logging
import os
from typing import NamedTuple

import torch

from .. import torch_kernels

__all__ = [
    "BACKENDS",
    "ENV_VAR",
    "TOLERANCE",
    "BackendCheck",
    "check_backend",
    "configured_backend",
    "index_dtype",
    "installed",
    "kernels",
    "loss_backend",
    "resolve_backend",
]

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "torch", "numba", "triton")
ENV_VAR = "ALPHAFREE_DDC_BACKEND"
# The compiled backend "auto" tries first on a device type.
CANDIDATES = {"cuda": "triton", "cpu": "numba"}
# Largest relative difference to the torch backend a self-check accepts (distances, value, and
# gradient, each relative to the reference's largest magnitude).
TOLERANCE = 1e-5
# The self-check's inputs: (B, H, W, K, seed of uniform random image and alpha). Pixel counts
# that fill several Triton programs and leave partial blocks. The seeds make them tie-free by a
# margin: at every pixel the K-th and (K+1)-th smallest window distances differ (or are both
# the zero padding's), and no DDC term but the centre's is near its kink, by > 3e-5, 100 times
# float32's rounding (tests/modeling/test_backends.py checks it).
CHECK_CASES = ((1, 9, 13, 5, 0), (2, 16, 20, 11, 26), (1, 11, 37, 11, 6))

_CHECKS = {}  # (backend, device, dtype) -> BackendCheck
_AUTO = {}  # device -> the backend "auto" picked there
_SAID = set()  # messages logged once per process


class BackendCheck(NamedTuple):
    """The answer of :func:`check_backend`: ``ok``, and ``reason``, a sentence saying what was
    compared, or what failed and how."""

    ok: bool
    reason: str


@functools.lru_cache(maxsize=None)
def installed(module: str) -> bool:
    """Whether ``module`` (numba, triton) can be found, without importing it."""
    return importlib.util.find_spec(module) is not None


def index_dtype(kernel_size):
    """dtype of the selected window offsets (0 .. K*K-1): uint8 up to K = 16, else int16."""
    return torch.uint8 if kernel_size * kernel_size <= 256 else torch.int16


def kernels(backend: str):
    """The kernel module of a compiled backend: select, pair_forward, pair_backward,
    affinity_forward, affinity_backward (same signatures in both)."""
    if backend == "numba":
        from .. import cpu_kernels

        return cpu_kernels
    if backend == "triton":
        from .. import triton_kernels

        return triton_kernels
    raise ValueError(f"backend {backend!r} has no compiled kernels")


def configured_backend(backend: str) -> str:
    """``backend``, or for "auto" the value of ``ALPHAFREE_DDC_BACKEND`` when it is set; raises
    ValueError for a name that is not a backend."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    value = os.environ.get(ENV_VAR, "").strip()
    if backend != "auto" or not value:
        return backend
    if value not in BACKENDS:
        raise ValueError(
            f"environment variable {ENV_VAR}={value!r} is not a DDC backend: set it to one of "
            f"{', '.join(BACKENDS)}, or unset it"
        )
    return value


def resolve_backend(backend: str, device) -> str:
    """The backend that runs on ``device`` (a torch.device or its name): a named one after
    checking that it can run there, for "auto" the checked choice of the module docstring."""
    backend = configured_backend(backend)
    device = torch.device(device)
    if backend == "auto":
        key = _device_key(device)
        if key not in _AUTO:
            _AUTO[key] = _pick(device)
        return _AUTO[key]
    if backend == "numba" and device.type != "cpu":
        raise ValueError(f"backend 'numba' runs on CPU tensors only, got a {device} tensor")
    if backend == "triton" and device.type not in ("cuda", "cpu"):
        raise ValueError(
            f"backend 'triton' runs on CUDA (or, interpreted, CPU) tensors, not {device}"
        )
    if backend != "torch" and not installed(backend):
        raise ValueError(f"backend {backend!r} needs the {backend} package (pip install {backend})")
    return backend


def loss_backend(backend: str, device) -> str:
    """The backend of the loss side (DDC, DC, affinity forward and backward): that of
    :func:`resolve_backend`, except Triton while ``torch.are_deterministic_algorithms_enabled()``:
    its backward adds gradients with float atomics (run-to-run differences in the last bits), so
    the deterministic torch backend takes over (the Triton selection, which has no atomics,
    stays). Logged once per process."""
    backend = resolve_backend(backend, device)
    if backend == "triton" and torch.are_deterministic_algorithms_enabled():
        _say_once(
            logging.INFO,
            "deterministic algorithms are enabled: the DDC / DC / affinity losses run on the "
            "torch backend (the Triton backward adds with float atomics, not bit-reproducible); "
            "the neighbour selection stays on Triton",
        )
        return "torch"
    return backend


def _pick(device):
    candidate = CANDIDATES.get(device.type)
    if candidate is None:
        return "torch"  # no compiled backend for this device type
    ok, reason = check_backend(candidate, device)
    if ok:
        logger.info(f"DDC backend 'auto' on {device}: {candidate} ({reason})")
        return candidate
    _say_once(
        logging.WARNING,
        f"DDC backend 'auto' on {device}: using the torch backend (slower, more memory) instead "
        f"of {candidate}: {reason}",
    )
    return "torch"


def _say_once(level, message):
    if message not in _SAID:
        _SAID.add(message)
        logger.log(level, message)


def _device_key(device):
    if device.type == "cuda" and device.index is None and torch.cuda.is_available():
        device = torch.device("cuda", torch.cuda.current_device())
    return str(device)


# ---------------------------------------------------------------------------------------------
# The self-check
# ---------------------------------------------------------------------------------------------
def check_backend(backend: str, device, dtype: torch.dtype = torch.float32) -> BackendCheck:
    """Run ``backend``'s selection and DDC forward and backward on ``device`` on small fixed
    tie-free inputs (:data:`CHECK_CASES`: K = 5 and 11) in ``dtype``, and compare them with the
    torch backend's (on CPU, in float64): the sorted selected distances, the loss value and its
    gradient, each within :data:`TOLERANCE` relative.

    Never raises for a failing backend (not installed, an import, compile or launch error, wrong
    or non-finite values): ``ok`` is then False and ``reason`` says which step failed on which
    input, and how. The answer is cached per (backend, device, dtype) for the process.

    Args:
        backend: "torch", "numba" or "triton".
        device: torch.device or its name ("cpu", "cuda", "cuda:1").
        dtype: torch.float32 (what training uses) or torch.float64.
    """
    if backend not in BACKENDS[1:]:
        raise ValueError(f"check_backend: backend must be one of {BACKENDS[1:]}, got {backend!r}")
    device = torch.device(device)
    key = (backend, _device_key(device), dtype)
    if key not in _CHECKS:
        _CHECKS[key] = _check(backend, device, dtype)
    return _CHECKS[key]


def _check(backend, device, dtype):
    if backend != "torch" and not installed(backend):
        return BackendCheck(False, f"{backend} is not installed (pip install {backend})")
    if backend == "numba" and device.type != "cpu":
        return BackendCheck(False, f"numba runs on CPU tensors only, not {device}")
    worst = 0.0
    step, case = f"importing the {backend} kernels", ""
    try:
        steps = _torch_steps
        if backend != "torch":
            steps = functools.partial(_kernel_steps, kernels(backend))
        for number, (b, h, w, K, _) in enumerate(CHECK_CASES):
            case = f" (B={b}, {h}x{w}, K={K})"
            step = f"moving the inputs to {device}"
            image, alpha = (t.to(device, dtype) for t in _check_inputs(number))
            reference = _reference(number)
            for step, compute in steps(image, alpha, K):
                difference = _relative(compute(), reference[step])
                if not difference <= TOLERANCE:  # NaN fails too
                    return BackendCheck(
                        False,
                        f"{backend} on {device}: the {step} differs from the torch backend's"
                        f"{case}: relative difference {difference:.2e} > {TOLERANCE:.0e}",
                    )
                worst = max(worst, difference)
    except Exception as error:  # a failing kernel is an answer, not a crash
        message = (str(error).strip().splitlines() or [""])[0][:300]
        return BackendCheck(
            False, f"{backend} on {device}: {step} failed{case}: {type(error).__name__}: {message}"
        )
    return BackendCheck(
        True,
        f"agrees with the torch backend on {len(CHECK_CASES)} inputs, K = 5 and 11, "
        f"{str(dtype).replace('torch.', '')}: largest relative difference {worst:.1e}",
    )


def _relative(result, reference):
    """Largest |result - reference| relative to the reference's largest magnitude; inf when the
    shapes differ."""
    result, reference = result.detach().double().cpu(), reference.detach().double().cpu()
    if result.shape != reference.shape:
        return float("inf")
    scale = max(reference.abs().max().item(), 1e-30)
    return (result - reference).abs().max().item() / scale


@functools.lru_cache(maxsize=None)
def _check_inputs(number):
    """(image (B, 3, H, W), alpha (B, 1, H, W)) float32 in [0, 1] of CHECK_CASES[number]."""
    b, h, w, _, seed = CHECK_CASES[number]
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, h, w, generator=gen), torch.rand(b, 1, h, w, generator=gen)


@functools.lru_cache(maxsize=None)
def _reference(number):
    """{step: result} of the torch backend on CPU in float64 for CHECK_CASES[number]."""
    image, alpha = (t.double() for t in _check_inputs(number))
    return {step: compute() for step, compute in _torch_steps(image, alpha, CHECK_CASES[number][3])}


def _torch_steps(image, alpha, K):
    """[(step, function computing its result)], to be run in order: the sorted selected
    distances (B, K, H, W), the DDC value (Listing 1's mean) and its gradient (B, 1, H, W), by
    the torch backend."""
    alpha = alpha.detach().requires_grad_(True)
    out = {}

    def selection():
        out["index"], out["distance"] = torch_kernels.select(image, K, False, index_dtype(K))
        return out["distance"].sort(1).values

    def forward():
        out["value"] = torch_kernels.pair_loss(alpha, out["index"], out["distance"], None, True,
                                               out["distance"].numel())  # fmt: skip
        return out["value"]

    return [
        ("selection (sorted distances)", selection),
        ("DDC forward value", forward),
        ("DDC backward gradient", lambda: torch.autograd.grad(out["value"], alpha)[0]),
    ]


def _kernel_steps(module, image, alpha, K):
    """:func:`_torch_steps` by a compiled backend's kernel ``module``."""
    sync = torch.cuda.synchronize if image.is_cuda else (lambda: None)  # launch errors show here
    out = {}

    def selection():
        index, distance = module.select(image.contiguous(), K, False, index_dtype(K))
        sync()
        if distance.shape != (image.shape[0], K, *image.shape[2:]) or index.shape != distance.shape:
            raise ValueError(f"selection shapes {tuple(index.shape)}, {tuple(distance.shape)}")
        if index.long().min() < 0 or index.long().max() >= K * K:
            raise ValueError(f"selected window offsets outside 0 .. {K * K - 1}")
        out["index"], out["distance"] = index, distance
        return distance.sort(1).values

    def forward():
        value = module.pair_forward(alpha, out["index"], out["distance"], None, True)
        sync()
        return value / out["distance"].numel()

    def backward():
        scale = 1.0 / out["distance"].numel()
        grad = module.pair_backward(alpha, out["index"], out["distance"], None, True, scale)
        sync()
        return grad

    return [
        ("selection (sorted distances)", selection),
        ("DDC forward value", forward),
        ("DDC backward gradient", backward),
    ]
