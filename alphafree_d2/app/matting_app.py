"""The demo page's web application: one HTML page and a small JSON API (Starlette).

Routes::

    GET  /                              the page (static/index.html, app.js, app.css)
    GET  /api/info                      {"models": [{name, description, device}], "examples": [...],
                                        "max_upload_bytes": int}
    GET  /api/examples/{name}           an example photo as PNG
    POST /api/predict?filename=F        body: the image file's bytes; or
    POST /api/predict?example=NAME      no body: an example photo
        -> 200 {"id", "name", "width", "height", "input", "seconds",
                "models": [{"name", "alpha", "cutout", "seconds": {"alpha", "cutout"}}],
                "difference": null or {"image", "mean_abs", "max_abs"}}
        -> 400 / 413 / 404 / 500 {"error": message}
    GET  /api/results/{id}/{file}       input.png, alpha_{i}.png, cutout_{i}.png, difference.png;
                                        ?download=1 adds Content-Disposition: attachment

Every model sees the same upright RGB image; alpha comes from its predictor (for
:class:`~alphafree_d2.inference.MattingPredictor`, the high-resolution policy of
``tools/predict.py``) and the cutout is the RGBA image ``tools/predict.py`` writes (foreground
colours re-estimated, :func:`~alphafree_d2.inference.estimate_foreground`). Results are kept in
memory for the last ``max_results`` predictions only. Predictions run one at a time.
"""

import logging
import os
import re
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Sequence

import numpy as np

from ..inference.batch import alpha_to_png
from ..inference.foreground import estimate_foreground, make_cutout
from .images import UploadError, decode_upload, difference_image, encode_png

__all__ = ["DemoModel", "create_app", "STATIC_DIR"]

logger = logging.getLogger(__name__)

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")


@dataclass
class DemoModel:
    """A model shown on the page.

    Attributes:
        name: short label ("A", "B", ...), also used in download file names.
        predictor: uint8 (H, W, 3) RGB -> float (H, W) alpha in [0, 1], e.g. a
            :class:`~alphafree_d2.inference.MattingPredictor`.
        description: what it is (checkpoint, config), shown under the label.
    """

    name: str
    predictor: Callable[[np.ndarray], np.ndarray]
    description: str = ""


class _PredictionError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def _safe_name(text):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "image"


class _MattingService:
    """The work behind the routes, without any HTTP: predictions and the results store."""

    def __init__(self, models, examples, max_results):
        self.models = list(models)
        self.examples = dict(examples)
        self.max_results = max_results
        self.results = OrderedDict()  # id -> {"stem": str, "files": {file name: bytes}}
        self._example_cache = {}
        self._predict_lock = threading.Lock()  # one prediction at a time
        self._store_lock = threading.Lock()  # guards the two dicts

    def example(self, name) -> np.ndarray:
        if name not in self.examples:
            raise _PredictionError(404, f"no example named {name!r}")
        with self._store_lock:
            if name not in self._example_cache:
                self._example_cache[name] = self.examples[name]()
            return self._example_cache[name]

    def predict(self, image: np.ndarray, stem: str) -> dict:
        with self._predict_lock:
            return self._predict(image, stem)

    def _predict(self, image, stem):
        height, width = image.shape[:2]
        start = time.perf_counter()
        files = {"input.png": encode_png(image)}
        models, alphas = [], []
        for index, model in enumerate(self.models):
            t0 = time.perf_counter()
            try:
                alpha = np.asarray(model.predictor(image), dtype=np.float32)
            except Exception as e:  # out of memory, a model that cannot take this size, ...
                logger.exception("model %s failed on %s", model.name, stem)
                raise _PredictionError(
                    500, f"model {model.name} failed on {stem}: {type(e).__name__}: {e}"
                ) from e
            if alpha.shape != (height, width):
                raise _PredictionError(
                    500,
                    f"model {model.name} returned alpha of shape {alpha.shape} for an image of "
                    f"{height}x{width}",
                )
            t1 = time.perf_counter()
            cutout = make_cutout(estimate_foreground(image, alpha), alpha)
            t2 = time.perf_counter()
            files[f"alpha_{index}.png"] = encode_png(alpha_to_png(alpha))
            files[f"cutout_{index}.png"] = encode_png(cutout)
            alphas.append(alpha)
            models.append(
                {
                    "name": model.name,
                    "alpha": f"alpha_{index}.png",
                    "cutout": f"cutout_{index}.png",
                    "seconds": {"alpha": round(t1 - t0, 3), "cutout": round(t2 - t1, 3)},
                }
            )
        difference = None
        if len(alphas) == 2:
            files["difference.png"] = encode_png(difference_image(alphas[0], alphas[1]))
            gap = np.abs(alphas[0] - alphas[1])
            difference = {
                "image": "difference.png",
                "mean_abs": round(float(gap.mean()), 5),
                "max_abs": round(float(gap.max()), 5),
            }
        result_id = uuid.uuid4().hex
        with self._store_lock:
            self.results[result_id] = {"stem": stem, "files": files}
            while len(self.results) > self.max_results:
                self.results.popitem(last=False)
        prefix = f"/api/results/{result_id}/"
        for entry in models:
            entry["alpha"] = prefix + entry["alpha"]
            entry["cutout"] = prefix + entry["cutout"]
        if difference is not None:
            difference["image"] = prefix + difference["image"]
        return {
            "id": result_id,
            "name": stem,
            "width": width,
            "height": height,
            "input": prefix + "input.png",
            "models": models,
            "difference": difference,
            "seconds": round(time.perf_counter() - start, 3),
        }

    def result_file(self, result_id, file):
        with self._store_lock:
            result = self.results.get(result_id)
            if result is None:
                raise _PredictionError(
                    404, "this result is no longer kept (only the latest ones are); run it again"
                )
            if file not in result["files"]:
                raise _PredictionError(404, f"result {result_id} has no file {file!r}")
            return result["stem"], result["files"][file]

    def download_name(self, stem, file):
        """'photo_alpha.png', or 'photo_B_alpha.png' when several models are shown."""
        kind, _, index = os.path.splitext(file)[0].partition("_")
        if not index:
            return f"{stem}_{kind}.png"
        if len(self.models) == 1:
            return f"{stem}_{kind}.png"
        return f"{stem}_{_safe_name(self.models[int(index)].name)}_{kind}.png"


def create_app(
    models: Sequence[DemoModel],
    examples: Optional[Dict[str, Callable[[], np.ndarray]]] = None,
    *,
    max_upload_mb: float = 64.0,
    max_results: int = 8,
):
    """The demo page as an ASGI application (serve it with uvicorn, see
    :func:`alphafree_d2.app.serve`, or test it with ``starlette.testclient.TestClient``).

    Args:
        models: one model, or two or more shown side by side (the first two's difference is
            shown when there are exactly two).
        examples: name -> loader of a uint8 (H, W, 3) RGB image (called once, when first used);
            default none.
        max_upload_mb: larger uploads are refused (413).
        max_results: predictions whose images are kept for display and download.
    """
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import FileResponse, JSONResponse, Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    if not models:
        raise ValueError("create_app needs at least one model")
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ValueError(f"model names must differ, got {names}")
    service = _MattingService(models, examples or {}, max_results)
    max_upload_bytes = int(max_upload_mb * 1024 * 1024)

    def error(status, message):
        return JSONResponse({"error": message}, status_code=status)

    async def index(request):
        return FileResponse(os.path.join(STATIC_DIR, "index.html"))

    async def info(request):
        return JSONResponse(
            {
                "models": [
                    {
                        "name": m.name,
                        "description": m.description,
                        "device": str(getattr(m.predictor, "device", "")),
                    }
                    for m in service.models
                ],
                "examples": list(service.examples),
                "max_upload_bytes": max_upload_bytes,
            }
        )

    async def example_image(request):
        try:
            image = await run_in_threadpool(service.example, request.path_params["name"])
        except _PredictionError as e:
            return error(e.status, str(e))
        return Response(encode_png(image), media_type="image/png")

    async def read_body(request):
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_upload_bytes:
            return None
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_upload_bytes:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    async def predict(request):
        example = request.query_params.get("example")
        try:
            if example is not None:
                image = await run_in_threadpool(service.example, example)
                stem = os.path.splitext(example)[0]
            else:
                filename = request.query_params.get("filename", "upload")
                data = await read_body(request)
                if data is None:
                    return error(
                        413,
                        f"{filename}: the file is larger than the page accepts "
                        f"({max_upload_bytes / 2**20:.0f} MB; start the app with a larger "
                        f"--max-upload-mb)",
                    )
                image = await run_in_threadpool(decode_upload, data, filename)
                stem = _safe_name(os.path.splitext(os.path.basename(filename))[0])
            result = await run_in_threadpool(service.predict, image, stem)
        except UploadError as e:
            return error(400, f"{e}. Upload a JPEG, PNG, WebP, BMP or TIFF photo.")
        except _PredictionError as e:
            return error(e.status, str(e))
        return JSONResponse(result)

    async def result_file(request):
        file = request.path_params["file"]
        try:
            stem, data = service.result_file(request.path_params["result_id"], file)
        except _PredictionError as e:
            return error(e.status, str(e))
        headers = {"Cache-Control": "no-store"}
        if request.query_params.get("download"):
            headers["Content-Disposition"] = (
                f'attachment; filename="{service.download_name(stem, file)}"'
            )
        return Response(data, media_type="image/png", headers=headers)

    routes = [
        Route("/", index),
        Route("/api/info", info),
        Route("/api/examples/{name}", example_image),
        Route("/api/predict", predict, methods=["POST"]),
        Route("/api/results/{result_id}/{file}", result_file),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    app = Starlette(routes=routes)
    app.state.service = service
    return app
