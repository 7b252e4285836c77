"""``python -m alphafree_d2.modeling.backends``: each DDC backend's state on this machine (installed
or not, on which device, its self-check's answer and time) and what "auto" picks. Exit status 0,
or 1 when ``ALPHAFREE_DDC_BACKEND`` holds an invalid value."""

import os
import sys
import time
from importlib import metadata

import torch

from . import BACKENDS, ENV_VAR, check_backend, installed, loss_backend, resolve_backend


def _version(package):
    if package != "torch" and not installed(package):
        return "not installed"
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "installed"


def _devices():
    devices = [torch.device("cpu")]
    if torch.cuda.is_available():
        devices.append(torch.device("cuda", torch.cuda.current_device()))
    return devices


def _triton_interpreted():
    """Whether Triton runs its kernels on CPU tensors in this process (TRITON_INTERPRET=1 at
    import), or the reason it cannot tell."""
    try:
        from .. import triton_kernels

        return triton_kernels.INTERPRETED, ""
    except Exception as error:
        return False, f"import failed: {type(error).__name__}: {error}"


def rows():
    """[(backend, version, device, answer, seconds or None)] for this machine."""
    table = []
    for backend in BACKENDS[1:]:
        version = _version(backend)
        for device in _devices():
            why_not = None
            if backend == "numba" and device.type != "cpu":
                continue
            if backend == "triton" and device.type == "cpu" and installed("triton"):
                interpreted, error = _triton_interpreted()
                if not interpreted:
                    why_not = error or (
                        "not checked: CPU tensors need Triton's interpreter (TRITON_INTERPRET=1); "
                        '"auto" never uses Triton on CPU'
                    )
            if why_not is not None:
                table.append((backend, version, str(device), why_not, None))
                continue
            start = time.perf_counter()
            ok, reason = check_backend(backend, device)
            seconds = time.perf_counter() - start
            table.append((backend, version, str(device), ("ok: " if ok else "FAILED: ") + reason,
                          seconds))  # fmt: skip
        if backend == "triton" and not torch.cuda.is_available():
            table.append((backend, version, "cuda", "no CUDA device visible", None))
    return table


def main():
    print(
        f"DDC backends on this machine: torch {torch.__version__}, "
        f"{torch.get_num_threads()} CPU threads, CUDA "
        + (torch.cuda.get_device_name() if torch.cuda.is_available() else "not available")
    )
    env = os.environ.get(ENV_VAR, "").strip()
    print(
        f"{ENV_VAR}: {env or 'unset'}; deterministic algorithms: "
        + ("on" if torch.are_deterministic_algorithms_enabled() else "off")
    )
    print(f"{'backend':7} | {'version':13} | {'device':6} | {'time':>7} | self-check")
    for backend, version, device, answer, seconds in rows():
        took = f"{seconds:6.2f}s" if seconds is not None else "-"
        print(f"{backend:7} | {version:13} | {device:6} | {took:>7} | {answer}")
    status = 0
    for device in _devices():
        try:
            picked, losses = resolve_backend("auto", device), loss_backend("auto", device)
        except ValueError as error:
            print(f'"auto" on {device}: {error}')
            status = 1
            continue
        also = f" (losses: {losses}, deterministic algorithms are on)" if losses != picked else ""
        print(f'"auto" on {device}: {picked}{also}')
    return status


if __name__ == "__main__":
    sys.exit(main())
