"""alphafree_d2.modeling.backends: the self-check of a backend against the torch backend, what
"auto" picks after it (and its one warning when it falls back), the ALPHAFREE_DDC_BACKEND
override, the deterministic choice, and the torch backend in bands of rows
(alphafree_d2.modeling.torch_kernels) against the whole-image formulation.

Faults are injected on CPU (numba, and Triton in its interpreter) by replacing a kernel function;
a CUDA device is faked with ``torch.device("cuda")`` (creating the object needs no GPU) and a
replaced ``check_backend``. The ``cuda`` tests run the real check on a GPU."""

import logging

import pytest
import torch
from torch.nn import functional as F

from alphafree_d2.modeling import backends, cpu_kernels, torch_kernels, triton_kernels
from alphafree_d2.modeling import losses as L
from alphafree_d2.modeling.backends import BackendCheck, check_backend, loss_backend
from alphafree_d2.utils.testing import (
    listing1_ddc,
    reference_neighbour_alpha,
    reference_selection,
)

CPU, CUDA = torch.device("cpu"), torch.device("cuda")
needs_interpreter = pytest.mark.skipif(
    not triton_kernels.INTERPRETED, reason="Triton compiled (CUDA machine): the cuda tests cover it"
)


@pytest.fixture
def fresh(monkeypatch):
    """Empty per-process caches (restored afterwards) and no environment override."""
    monkeypatch.setattr(backends, "_CHECKS", {})
    monkeypatch.setattr(backends, "_AUTO", {})
    monkeypatch.setattr(backends, "_SAID", set())
    monkeypatch.delenv(backends.ENV_VAR, raising=False)


@pytest.fixture
def log():
    """The records logged by alphafree_d2.modeling.backends (whatever the parents' handlers)."""
    records = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = records.append
    logger = logging.getLogger(backends.__name__)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield records
    logger.removeHandler(handler)
    logger.setLevel(level)


def warnings_in(records):
    return [r.getMessage() for r in records if r.levelno >= logging.WARNING]


# ---------------------------------------------------------------------------------------------
# check_backend
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("number", range(len(backends.CHECK_CASES)))
def test_check_inputs_are_tie_free_by_a_margin(number):
    """The self-check compares selections and gradients between float32 kernels and a float64
    reference: its fixed inputs must leave no choice (K-th vs (K+1)-th distance) and no term's
    sign (the DDC kink) within float32 rounding."""
    b, h, w, K, _ = backends.CHECK_CASES[number]
    image, alpha = (t.double() for t in backends._check_inputs(number))
    assert image.shape == (b, 3, h, w) and image.dtype == torch.float64
    candidates, distance, index = reference_selection(image, K)
    ones = torch.ones(1, 1, h, w, dtype=torch.float64)
    inside = (F.unfold(ones, K, padding=K // 2).view(1, K * K, h, w) > 0).expand(b, -1, -1, -1)
    ordered, order = candidates.sort(1)
    inside = torch.gather(inside, 1, order)
    gap = ordered[:, K] - ordered[:, K - 1]
    padding_tie = ~inside[:, K] & ~inside[:, K - 1]  # equal, and equally harmless (alpha 0)
    assert gap[~padding_tie].min() > 3e-5
    residual = distance - (alpha - reference_neighbour_alpha(alpha, index, K))
    centre = index == K * K // 2  # d = 0 and a_i - a_i = 0 exactly in every backend
    assert residual.abs()[~centre].min() > 3e-5


CHECKABLE = [
    pytest.param("torch", "cpu", id="torch"),
    pytest.param("numba", "cpu", id="numba"),
    pytest.param("triton", "cpu", id="triton-interpreted", marks=needs_interpreter),
    pytest.param("triton", "cuda", id="triton-cuda", marks=pytest.mark.cuda),
    pytest.param("torch", "cuda", id="torch-cuda", marks=pytest.mark.cuda),
]


@pytest.mark.parametrize("backend,device", CHECKABLE)
def test_check_backend_passes_on_working_kernels(fresh, backend, device):
    ok, reason = check_backend(backend, device)
    assert ok, reason
    assert "agrees with the torch backend" in reason and "float32" in reason


def _scaled(function, factor):
    return lambda *args: function(*args) * factor


def _raise(*args):
    raise RuntimeError("PTX assembly aborted")


def _nan_selection(function):
    def select(*args):
        index, distance = function(*args)
        distance.view(-1)[3] = float("nan")
        return index, distance

    return select


def _shifted_selection(function):
    def select(*args):
        index, distance = function(*args)
        return (index.long() + 1).clamp(max=args[1] ** 2 - 1).to(index.dtype), distance

    return select


# (kernel function, fault, what the reason must say)
FAULTS = [
    ("select", lambda f: _raise, "selection (sorted distances) failed (B=1, 9x13, K=5): "
                                 "RuntimeError: PTX assembly aborted"),
    ("select", _nan_selection, "the selection (sorted distances) differs"),
    ("select", _shifted_selection, "the DDC forward value differs"),  # right distances, wrong j
    ("pair_forward", lambda f: _scaled(f, 1.001), "the DDC forward value differs"),
    ("pair_backward", lambda f: _scaled(f, -1.0), "the DDC backward gradient differs"),
    ("pair_backward", lambda f: _raise, "DDC backward gradient failed"),
]  # fmt: skip


@pytest.mark.parametrize(
    "backend,module",
    [
        pytest.param("numba", cpu_kernels, id="numba"),
        pytest.param("triton", triton_kernels, id="triton-interpreted", marks=needs_interpreter),
    ],
)
@pytest.mark.parametrize("name,fault,says", FAULTS)
def test_check_backend_reports_a_failing_kernel_without_raising(
    fresh, monkeypatch, backend, module, name, fault, says
):
    monkeypatch.setattr(module, name, fault(getattr(module, name)))
    ok, reason = check_backend(backend, "cpu")
    assert not ok
    assert reason.startswith(f"{backend} on cpu: ") and says in reason, reason


def test_check_backend_reports_import_and_device_errors(fresh, monkeypatch):
    def broken(backend):
        raise ImportError("libLLVM.so: cannot open shared object file")

    monkeypatch.setattr(backends, "kernels", broken)
    ok, reason = check_backend("numba", "cpu")
    assert not ok and "importing the numba kernels failed: ImportError: libLLVM.so" in reason
    assert check_backend("numba", CUDA) == (False, "numba runs on CPU tensors only, not cuda")
    monkeypatch.setattr(backends, "installed", lambda name: False)
    assert check_backend("triton", "cpu") == (False, "triton is not installed (pip install triton)")
    with pytest.raises(ValueError, match="backend must be one of"):
        check_backend("auto", "cpu")


def test_check_backend_on_cuda_answers_on_any_machine(fresh):
    """A launch on a device that is not there is a failed check, not an exception."""
    ok, reason = check_backend("triton", "cuda")
    assert ok == torch.cuda.is_available(), reason
    if not ok:
        assert reason.startswith("triton on cuda: ") and "failed" in reason


def test_check_backend_is_cached_per_backend_device_and_dtype(fresh, monkeypatch):
    calls = []
    select = cpu_kernels.select
    monkeypatch.setattr(cpu_kernels, "select", lambda *a: calls.append(a[0].dtype) or select(*a))
    first = check_backend("numba", "cpu")
    assert first.ok and len(calls) == len(backends.CHECK_CASES)
    assert check_backend("numba", CPU) is first  # same device, by another name
    assert len(calls) == len(backends.CHECK_CASES)
    assert check_backend("numba", "cpu", torch.float64).ok
    assert calls[-1] == torch.float64 and len(calls) == 2 * len(backends.CHECK_CASES)


# ---------------------------------------------------------------------------------------------
# "auto": the checked choice, one warning, training goes on
# ---------------------------------------------------------------------------------------------
def train(backend, steps=3):
    """A few SGD steps of a one-conv matting model on the paper's loss (Eq. 11): the weights."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 1, 3, padding=1), torch.nn.Sigmoid())
    optimizer = torch.optim.SGD(net.parameters(), lr=0.5)
    criterion = L.MattingCriterion({"known": 1.0, "ddc": 10.0}, kernel_size=5, backend=backend)
    gen = torch.Generator().manual_seed(1)
    image = torch.rand(2, 3, 12, 10, generator=gen)
    trimap = torch.randint(0, 3, (2, 1, 12, 10), generator=gen) / 2
    for _ in range(steps):
        losses = criterion(net(image), image, trimap)
        optimizer.zero_grad()
        sum(losses.values()).backward()
        optimizer.step()
    return torch.cat([p.detach().flatten() for p in net.parameters()])


@pytest.mark.parametrize(
    "name,fault,says",
    [
        ("select", lambda f: _raise, "RuntimeError: PTX assembly aborted"),
        ("pair_backward", lambda f: _scaled(f, 1.5), "the DDC backward gradient differs"),
    ],
)
def test_auto_falls_back_to_torch_with_one_warning_and_trains_on(
    fresh, monkeypatch, log, name, fault, says
):
    expected = train("torch")
    monkeypatch.setattr(cpu_kernels, name, fault(getattr(cpu_kernels, name)))
    weights = train("auto")
    # the faulty kernel took no part: the same steps as the torch backend's
    torch.testing.assert_close(weights, expected, rtol=1e-6, atol=1e-6)
    assert backends._AUTO == {"cpu": "torch"}
    (warning,) = warnings_in(log)  # one, although every step resolved "auto" again
    assert "DDC backend 'auto' on cpu: using the torch backend" in warning and says in warning


def test_auto_uses_numba_on_cpu_after_its_check(fresh, monkeypatch, log):
    checked = []
    real = backends.check_backend
    monkeypatch.setattr(backends, "check_backend", lambda *a: checked.append(a) or real(*a))
    assert backends.resolve_backend("auto", CPU) == "numba"
    assert backends.resolve_backend("auto", "cpu") == "numba"
    assert checked == [("numba", CPU)] and not warnings_in(log)
    # the weights of a few steps with the numba kernels match the torch backend's
    torch.testing.assert_close(train("auto"), train("torch"), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("passes", [True, False])
def test_auto_on_cuda_uses_triton_only_after_its_check_passed_there(
    fresh, monkeypatch, log, passes
):
    checked = []

    def fake_check(backend, device, dtype=torch.float32):
        checked.append((backend, device))
        return BackendCheck(passes, "agrees" if passes else "triton on cuda: compile failed")

    monkeypatch.setattr(backends, "check_backend", fake_check)
    for _ in range(3):
        assert backends.resolve_backend("auto", CUDA) == ("triton" if passes else "torch")
    assert checked == [("triton", CUDA)]
    warnings = warnings_in(log)
    if passes:
        assert not warnings
    else:
        assert warnings == [
            "DDC backend 'auto' on cuda: using the torch backend (slower, more memory) instead "
            "of triton: triton on cuda: compile failed"
        ]


def test_auto_on_other_devices_is_torch_without_a_check(fresh, monkeypatch, log):
    monkeypatch.setattr(backends, "check_backend", _raise)
    assert backends.resolve_backend("auto", torch.device("mps")) == "torch"
    assert not warnings_in(log)


# ---------------------------------------------------------------------------------------------
# ALPHAFREE_DDC_BACKEND
# ---------------------------------------------------------------------------------------------
def test_environment_variable_replaces_auto(fresh, monkeypatch):
    monkeypatch.setattr(backends, "check_backend", _raise)  # a named backend is not checked
    monkeypatch.setenv("ALPHAFREE_DDC_BACKEND", "torch")
    assert backends.resolve_backend("auto", CPU) == "torch"
    assert backends.resolve_backend("numba", CPU) == "numba"  # the config's named backend wins
    monkeypatch.setenv("ALPHAFREE_DDC_BACKEND", "triton")
    assert backends.resolve_backend("auto", CUDA) == "triton"
    # the whole training path follows it: a broken numba kernel is never called
    monkeypatch.setenv("ALPHAFREE_DDC_BACKEND", "torch")
    monkeypatch.setattr(cpu_kernels, "select", _raise)
    expected = train("torch")
    torch.testing.assert_close(train("auto"), expected)


def test_environment_variable_auto_is_auto(fresh, monkeypatch):
    monkeypatch.setenv("ALPHAFREE_DDC_BACKEND", "auto")
    assert backends.resolve_backend("auto", CPU) == "numba"


@pytest.mark.parametrize("value", ["gpu", "Torch", "numba,torch"])
def test_invalid_environment_variable_is_a_clear_error(fresh, monkeypatch, value):
    monkeypatch.setenv("ALPHAFREE_DDC_BACKEND", value)
    message = f"environment variable ALPHAFREE_DDC_BACKEND='{value}' is not a DDC backend"
    with pytest.raises(ValueError, match=message):
        L.MattingCriterion({"known": 1.0, "ddc": 10.0})  # when the model is built
    with pytest.raises(ValueError, match=message):
        L.ddc_loss(torch.rand(1, 3, 6, 6), torch.rand(1, 1, 6, 6), 3)
    # a backend named in the config does not read it
    assert L.ddc_loss(torch.rand(1, 3, 6, 6), torch.rand(1, 1, 6, 6), 3, backend="torch") >= 0


# ---------------------------------------------------------------------------------------------
# Determinism
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def deterministic():
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(previous)


def test_deterministic_mode_moves_triton_losses_to_torch(fresh, monkeypatch, log, deterministic):
    monkeypatch.setattr(backends, "check_backend", lambda *a: BackendCheck(True, "agrees"))
    assert backends.resolve_backend("auto", CUDA) == "triton"  # the selection: no atomics
    assert loss_backend("auto", CUDA) == "torch"
    assert loss_backend("triton", CUDA) == "torch"
    assert loss_backend("numba", CPU) == "numba"  # its backward is deterministic
    said = [r.getMessage() for r in log if "deterministic algorithms are enabled" in r.getMessage()]
    assert len(said) == 1 and "float atomics" in said[0]
    torch.use_deterministic_algorithms(False)
    assert loss_backend("auto", CUDA) == "triton"


@needs_interpreter
def test_deterministic_mode_runs_the_triton_selection_and_torch_losses(
    fresh, monkeypatch, deterministic
):
    gen = torch.Generator().manual_seed(3)
    image = torch.rand(1, 3, 7, 9, generator=gen, dtype=torch.float64)
    alpha = torch.rand(1, 1, 7, 9, generator=gen, dtype=torch.float64).requires_grad_(True)
    selects = []
    select = triton_kernels.select
    monkeypatch.setattr(triton_kernels, "select", lambda *a: selects.append(1) or select(*a))
    for name in ("pair_forward", "pair_backward", "affinity_forward", "affinity_backward"):
        monkeypatch.setattr(triton_kernels, name, _raise)
    value = L.ddc_loss(image, alpha, 5, backend="triton")
    (grad,) = torch.autograd.grad(value, alpha)
    assert selects == [1]
    reference = alpha.detach().requires_grad_(True)
    expected = listing1_ddc(image, reference, 5)
    torch.testing.assert_close(value, expected)
    torch.testing.assert_close(grad, torch.autograd.grad(expected, reference)[0])
    L.affinity_loss(image, alpha, 5, backend="triton").backward()


# ---------------------------------------------------------------------------------------------
# The torch backend in bands of rows
# ---------------------------------------------------------------------------------------------
def _all_losses(image, alpha, trimap, K, padding):
    """{name: (value, gradient)} of DDC and DC (whole and unknown region) and affinity on the
    torch backend, and the selection."""
    selection = L.select_neighbours(image, K, padding, backend="torch")
    out = {"selection": (selection.index, selection.distance)}
    kw = dict(padding=padding, selection=selection, backend="torch")
    for name, fn in [
        ("ddc", lambda a: L.ddc_loss(None, a, K, **kw)),
        ("ddc_unknown", lambda a: L.ddc_loss(None, a, K, region="unknown", trimap=trimap, **kw)),
        ("dc", lambda a: L.dc_loss(None, a, K, **kw)),
        ("affinity", lambda a: L.affinity_loss(None, a, K, **kw)),
    ]:
        a = alpha.detach().clone().requires_grad_(True)
        value = fn(a)
        out[name] = (value.detach(), torch.autograd.grad(value, a)[0])
    return out


@pytest.mark.parametrize("padding", ["zeros", "valid"])
@pytest.mark.parametrize("size", [(2, 13, 9, 5), (1, 6, 17, 11), (3, 4, 5, 3)])
def test_banded_torch_backend_equals_the_whole_image(monkeypatch, size, padding):
    b, h, w, K = size
    gen = torch.Generator().manual_seed(h)
    image = torch.rand(b, 3, h, w, generator=gen, dtype=torch.float64)
    alpha = torch.rand(b, 1, h, w, generator=gen, dtype=torch.float64)
    trimap = (torch.randint(0, 3, (b, 1, h, w), generator=gen) / 2).double()
    whole = _all_losses(image, alpha, trimap, K, padding)
    bands = []
    make_bands = torch_kernels._bands
    monkeypatch.setattr(
        torch_kernels, "_bands", lambda *a: bands.append(make_bands(*a)) or bands[-1]
    )
    loss_row = b * w * (2 * K * K + 8 * K) * 8  # float64
    for budget in (1, 2 * loss_row):  # one row per band; two rows per loss band
        bands.clear()
        monkeypatch.setattr(torch_kernels, "CHUNK_BYTES", budget)
        banded = _all_losses(image, alpha, trimap, K, padding)
        assert all(len(used) > 1 for used in bands) and len(bands) == 5
        assert torch.equal(banded["selection"][0], whole["selection"][0])
        torch.testing.assert_close(banded["selection"][1], whole["selection"][1], rtol=0, atol=0)
        for name in ("ddc", "ddc_unknown", "dc", "affinity"):
            torch.testing.assert_close(banded[name], whole[name], rtol=1e-12, atol=1e-14)


def test_banded_torch_backend_keeps_each_unfold_under_the_budget(monkeypatch):
    """At batch 16, 512 x 512, K = 11 Listing 1's image unfold alone is 6.1 GB in float32: every
    unfold of the banded backend stays within CHUNK_BYTES, the whole-image one would not."""
    gen = torch.Generator().manual_seed(0)
    image = torch.rand(2, 3, 24, 16, generator=gen)
    alpha = torch.rand(2, 1, 24, 16, generator=gen, requires_grad=True)
    sizes = []
    unfold = F.unfold
    monkeypatch.setattr(F, "unfold", lambda *a, **k: sizes.append(unfold(*a, **k)) or sizes[-1])
    budget = 32 * 1024
    listing1 = 2 * 3 * 7 * 7 * 24 * 16 * 4
    assert listing1 > 8 * budget
    monkeypatch.setattr(torch_kernels, "CHUNK_BYTES", budget)
    L.ddc_loss(image, alpha, 7, backend="torch").backward()  # the backward recomputes bands
    nbytes = [t.numel() * t.element_size() for t in sizes]
    assert len(nbytes) > 24 and max(nbytes) <= budget
    sizes.clear()
    monkeypatch.setattr(torch_kernels, "CHUNK_BYTES", 1 << 40)
    L.ddc_loss(image, alpha, 7, backend="torch").backward()
    assert max(t.numel() * t.element_size() for t in sizes) == listing1


# ---------------------------------------------------------------------------------------------
# python -m alphafree_d2.modeling.backends
# ---------------------------------------------------------------------------------------------
def test_report_names_each_backend_and_the_auto_choice(fresh, capsys):
    from alphafree_d2.modeling.backends.__main__ import main

    assert main() == 0
    out = capsys.readouterr().out
    assert "ALPHAFREE_DDC_BACKEND: unset; deterministic algorithms: off" in out
    lines = out.splitlines()
    numba = next(line for line in lines if line.startswith("numba   | "))
    assert "| cpu    | " in numba and "ok: agrees with the torch backend" in numba
    assert any(line.startswith("torch   | ") and "ok: " in line for line in lines)
    triton = [line for line in lines if line.startswith("triton  | ")]
    assert {line.split("|")[2].strip() for line in triton} == {"cpu", "cuda"}
    assert '"auto" on cpu: numba' in lines


def test_report_with_a_broken_kernel_and_an_invalid_override(fresh, monkeypatch, capsys):
    from alphafree_d2.modeling.backends.__main__ import main

    monkeypatch.setattr(cpu_kernels, "pair_forward", _raise)
    assert main() == 0
    out = capsys.readouterr().out
    assert "FAILED: numba on cpu: DDC forward value failed (B=1, 9x13, K=5)" in out
    assert '"auto" on cpu: torch' in out.splitlines()
    monkeypatch.setenv("ALPHAFREE_DDC_BACKEND", "gpu")
    assert main() == 1
    assert "ALPHAFREE_DDC_BACKEND='gpu' is not a DDC backend" in capsys.readouterr().out
