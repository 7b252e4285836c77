"""The demo page's web application: one HTML page and a small JSON API (Starlette).

Every request must name the served address in its ``Host`` header, and every POST must carry
the header ``X-Alphafree-Request: 1`` and no foreign ``Origin`` (:mod:`.guard`; 421 / 403
otherwise). Uploads are raw request bodies (``Content-Type`` is ignored) named by the query's
``filename``; each is checked before it is decoded: size in bytes (413), name (no control
characters, 400), the pixel count its header declares (413), then decoded (400 when it is not an
image). Errors answer ``{"error": message}``.

Routes::

    GET  /                                  the page (static/index.html, *.js, app.css)
    GET  /api/info                          {"models": [{name, description, device,
                                            trimap_input}], "examples": [{name, trimap}],
                                            "max_upload_bytes", "max_pixels", "reference",
                                            "auto_trimap": {low, high, band},
                                            "refine": {models, steps, max_steps}}
    GET  /api/examples/{name}               an example photo as PNG

    POST /api/photos?filename=F             body: a photo file; or
    POST /api/photos?example=NAME           an example photo (and its trimap, when it has one)
        -> 200 {"photo": ID, "name", "width", "height", "image": PNG url,
                "trimap": PNG url or null}
    GET  /api/photos/{ID}/image.png         the photo, upright, as the models see it
    GET  /api/photos/{ID}/trimap.png        an example's trimap
    POST /api/photos/{ID}/trimap?filename=F body: a trimap file -> the trimap as an 8-bit gray
                                            0/128/255 PNG (values snapped and checked as
                                            alphafree_d2.data.io.read_trimap does; it must have
                                            the photo's size)
    POST /api/photos/{ID}/auto-trimap?model=NAME&low=0.05&high=0.95&band=10
                                            -> the trimap of automatic model NAME's alpha:
                                            foreground where alpha >= high, background where
                                            alpha <= low, both eroded by a band px ellipse
    POST /api/photos/{ID}/auto-trimap?filename=F&band=10
                                            body: a mask file (foreground >= 50 %) -> its trimap

    POST /api/predict?photo=ID[&reference=1][&refine_steps=N]
                                            body: the trimap file (needed when a model is
                                            trimap-guided or reference=1; empty: the
                                            example's own trimap, or none)
    POST /api/predict?example=NAME[&...]    the same for an example photo
    POST /api/predict?filename=F            body: a photo file (automatic models only)
        -> 200 {"id", "name", "width", "height", "input": PNG url, "trimap": PNG url or null,
                "seconds", "models": [{"name", "kind": "automatic" | "trimap" | "reference",
                "alpha", "cutout", "seconds": {"alpha", "cutout"}, ["note"]} or
                {"name", "kind", "error"}], "difference": null or {"image", "mean_abs",
                "max_abs"}}
        -> 400 / 404 / 413 / 500 {"error"}; 503 {"error"} with Retry-After when busy
    GET  /api/results/{id}/{file}           input.png, trimap.png, alpha_{i}.png,
                                            cutout_{i}.png (i: model index, or "ref"),
                                            difference.png; ?download=1 adds
                                            Content-Disposition: attachment

Options of a prediction are query parameters (:class:`~.service.PredictOptions`): ``reference=1``
adds a column of closed-form matting (pymatting) with the same trimap, timed; ``refine_steps=N``
(0 to ``MAX_REFINE_STEPS``) fine-tunes a copy of each trimap-guided model on the photo with its
trimap for N steps before it predicts (:mod:`alphafree_d2.inference.refine`; the column's
``note`` says so; ``/api/info``'s ``refine`` lists the models that can).

Every model sees the same upright RGB image; alpha comes from its predictor (for
:class:`~alphafree_d2.inference.MattingPredictor`, the high-resolution policy of
``tools/predict.py``); a trimap-guided model gets the trimap, and its known regions are copied
into the alpha; an automatic model's alpha is computed once per photo. The cutout is the RGBA
image ``tools/predict.py`` writes (foreground colours re-estimated,
:func:`~alphafree_d2.inference.estimate_foreground`). A model that fails, or returns NaN, gets an
error in its column. One inference at a time per model; at most ``1 + max_waiting`` requests
that run models at once (:mod:`.service`); a request whose client disconnected stops before the
next model and before post-processing.
"""

import functools
import logging
import os
from typing import Dict, Iterable, Optional, Sequence

from ..data.io import ImageTooLargeError, get_max_pixels
from .examples import Example
from .guard import LOOPBACK_NAMES, REQUEST_HEADER, RequestGuard
from .images import (
    UploadError,
    check_filename,
    decode_mask_upload,
    decode_trimap_upload,
    decode_upload,
    encode_png,
    safe_name,
    turned_by_exif,
)
from .service import (
    REFERENCE_NAME,
    Busy,
    ClientGone,
    DemoModel,
    MattingService,
    PageError,
    PredictOptions,
)
from .trimaps import (
    DEFAULT_BAND,
    DEFAULT_REFERENCE_MAX_UNKNOWN,
    DEFAULT_THRESHOLDS,
    trimap_from_mask,
)

__all__ = ["create_app", "STATIC_DIR"]

logger = logging.getLogger(__name__)

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
_PHOTO_HINT = "Upload a JPEG, PNG, WebP, BMP or TIFF photo."
_MAX_BAND = 1000  # px


# Per-photo refinement on the page: the step count offered, and the most a request may ask for
# (200 steps of 2 crops of 256 px took about 37 s per photo on 2 CPU cores: docs/refinement.md).
DEFAULT_REFINE_STEPS = 200
MAX_REFINE_STEPS = 1000


def _flag(query, name) -> bool:
    value = query.get(name, "0").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise PageError(400, f"{name}={value!r}: expected 1 or 0")


def _number(query, name, default, low, high, integer=False):
    text = query.get(name)
    if text is None:
        return default
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:  # also refuses nan
        kind = "a whole number" if integer else "a number"
        raise PageError(400, f"{name}={text!r}: expected {kind} from {low} to {high}")
    return value


def _stem(name: str) -> str:
    return safe_name(os.path.splitext(os.path.basename(name))[0])


def _json_errors(handler):
    """Expected failures of a route as ``{"error": message}`` with their status."""
    from starlette.responses import JSONResponse, Response

    @functools.wraps(handler)
    async def wrapped(request):
        try:
            return await handler(request)
        except Busy as e:
            return JSONResponse(
                {"error": str(e)}, status_code=503, headers={"Retry-After": str(e.retry_after)}
            )
        except PageError as e:
            return JSONResponse({"error": str(e)}, status_code=e.status)
        except ImageTooLargeError as e:
            return JSONResponse({"error": str(e)}, status_code=413)
        except UploadError as e:
            return JSONResponse({"error": str(e)}, status_code=400)
        except ClientGone:
            logger.info(
                "%s: the client went away; its remaining work was skipped", request.url.path
            )
            return Response(status_code=499)

    return wrapped


def create_app(
    models: Sequence[DemoModel],
    examples: Optional[Dict[str, Example]] = None,
    *,
    max_upload_mb: float = 64.0,
    max_results: int = 8,
    max_waiting: int = 2,
    allowed_hosts: Optional[Iterable[str]] = None,
    max_pixels: Optional[int] = None,
    reference_max_unknown: int = DEFAULT_REFERENCE_MAX_UNKNOWN,
):
    """The demo page as an ASGI application (serve it with :func:`alphafree_d2.app.serve`, or
    test it with ``starlette.testclient.TestClient``).

    Args:
        models: one model, or two or more shown side by side (the first two's difference is
            shown when there are exactly two). Any may be trimap-guided: the page then offers
            the trimap painter.
        examples: name -> :class:`~alphafree_d2.app.examples.Example` (a plain callable is an
            example without trimap); default none.
        max_upload_mb: larger uploads are refused (413).
        max_results: photos, and results, kept for display and download.
        max_waiting: requests that may wait while others run the models (more: 503).
        allowed_hosts: accepted ``Host`` values ("name:port", see
            :func:`alphafree_d2.app.allowed_hosts`); default the loopback names on any port.
        max_pixels: pixel cap of uploads; default the process's
            (:func:`alphafree_d2.data.io.set_max_pixels`).
        reference_max_unknown: unknown pixels above which the closed-form reference is solved
            on a downscaled copy.
    """
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.middleware import Middleware
    from starlette.responses import FileResponse, JSONResponse, Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    if not models:
        raise ValueError("create_app needs at least one model")
    names = [m.name for m in models]
    if len(set(names)) != len(names) or REFERENCE_NAME in names:
        raise ValueError(f"model names must differ (and not be {REFERENCE_NAME!r}), got {names}")
    if not (max_upload_mb > 0 and max_upload_mb != float("inf")):
        raise ValueError(f"max_upload_mb must be a positive number, got {max_upload_mb}")
    if max_waiting < 0 or max_results < 1:
        raise ValueError(
            f"need max_waiting >= 0, max_results >= 1, got {max_waiting}, {max_results}"
        )
    examples = {
        name: e if isinstance(e, Example) else Example(image=e)
        for name, e in (examples or {}).items()
    }
    service = MattingService(models, examples, max_results, max_waiting, reference_max_unknown)
    max_upload_bytes = int(max_upload_mb * 1024 * 1024)

    def cap():
        return get_max_pixels() if max_pixels is None else max_pixels

    async def index(request):
        return FileResponse(os.path.join(STATIC_DIR, "index.html"))

    async def info(request):
        low, high = DEFAULT_THRESHOLDS
        return JSONResponse(
            {
                "models": [
                    {
                        "name": m.name,
                        "description": m.description,
                        "device": str(getattr(m.predictor, "device", "")),
                        "trimap_input": m.trimap_input,
                    }
                    for m in service.models
                ],
                "examples": [
                    {"name": name, "trimap": e.trimap is not None}
                    for name, e in service.examples.items()
                ],
                "max_upload_bytes": max_upload_bytes,
                "max_pixels": cap(),
                "reference": REFERENCE_NAME,
                "auto_trimap": {"low": low, "high": high, "band": DEFAULT_BAND},
                "refine": {
                    "models": [m.name for m in service.models if m.can_refine],
                    "steps": DEFAULT_REFINE_STEPS,
                    "max_steps": MAX_REFINE_STEPS,
                },
            }
        )

    @_json_errors
    async def example_image(request):
        image, _ = await run_in_threadpool(service.example, request.path_params["name"])
        return Response(encode_png(image), media_type="image/png")

    async def read_body(request, name):
        declared = request.headers.get("content-length", "")
        too_large = PageError(
            413,
            f"{name}: the file is larger than the page accepts ({max_upload_bytes / 2**20:g} MB; "
            "start tools/demo_app.py with a larger --max-upload-mb)",
        )
        if declared.isdigit() and int(declared) > max_upload_bytes:
            raise too_large
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_upload_bytes:
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)

    async def upload_photo(request):
        """(Photo id, Photo) of the request: an example, a kept photo, or the body's file."""
        query = request.query_params
        if "photo" in query:
            return query["photo"], service.photo(query["photo"])
        if "example" in query:
            name = query["example"]
            image, trimap = await run_in_threadpool(service.example, name)
            return await run_in_threadpool(service.add_photo, image, _stem(name), trimap)
        filename = query.get("filename", "upload")
        name = check_filename(filename)
        data = await read_body(request, name)
        try:
            image = await run_in_threadpool(decode_upload, data, filename, cap())
        except UploadError as e:
            raise UploadError(f"{e}. {_PHOTO_HINT}") from None
        turned = await run_in_threadpool(turned_by_exif, data)
        return await run_in_threadpool(service.add_photo, image, _stem(name), None, turned)

    async def uploaded_trimap(request, photo, decoder=decode_trimap_upload):
        """The body's trimap (or mask) for ``photo``, or None for an empty body."""
        filename = request.query_params.get("filename", "trimap.png")
        name = check_filename(filename)
        data = await read_body(request, name)
        if not data:
            return None
        return await run_in_threadpool(
            functools.partial(decoder, turned=photo.turned, max_pixels=cap()),
            data,
            filename,
            photo.size,
            photo.name,
        )

    def stopper(request):
        """``should_stop()`` for the service, called from its worker thread."""
        import anyio.from_thread

        return lambda: anyio.from_thread.run(request.is_disconnected)

    @_json_errors
    async def photos(request):
        if "photo" in request.query_params:
            raise PageError(400, "POST /api/photos takes filename=F (and the file) or example=NAME")
        photo_id, photo = await upload_photo(request)
        return JSONResponse(service.photo_answer(photo_id, photo))

    @_json_errors
    async def photo_file(request):
        data = service.photo_file(request.path_params["photo_id"], request.path_params["file"])
        return Response(data, media_type="image/png", headers={"Cache-Control": "no-store"})

    @_json_errors
    async def photo_trimap(request):
        photo = service.photo(request.path_params["photo_id"])
        trimap = await uploaded_trimap(request, photo)
        if trimap is None:
            raise PageError(400, "the trimap file is empty")
        return Response(encode_png(trimap), media_type="image/png")

    @_json_errors
    async def auto_trimap(request):
        photo = service.photo(request.path_params["photo_id"])
        query = request.query_params
        band = _number(query, "band", DEFAULT_BAND, 0, _MAX_BAND, integer=True)
        if "model" not in query:
            mask = await uploaded_trimap(request, photo, decode_mask_upload)
            if mask is None:
                raise PageError(400, "send the mask file as the body, or name an automatic model")
            trimap = await run_in_threadpool(trimap_from_mask, mask, band)
        else:
            low = _number(query, "low", DEFAULT_THRESHOLDS[0], 0.0, 1.0)
            high = _number(query, "high", DEFAULT_THRESHOLDS[1], 0.0, 1.0)
            if not low < high:
                raise PageError(400, f"low={low} must be below high={high}")
            with service.queue.admitted("the auto trimap"):
                trimap = await run_in_threadpool(
                    service.auto_trimap, photo, query["model"], low, high, band, stopper(request)
                )
        return Response(encode_png(trimap), media_type="image/png")

    @_json_errors
    async def predict(request):
        query = request.query_params
        options = PredictOptions(
            reference=_flag(query, "reference"),
            refine_steps=_number(query, "refine_steps", 0, 0, MAX_REFINE_STEPS, integer=True),
        )
        with service.queue.admitted("this prediction"):
            photo_id, photo = await upload_photo(request)
            trimap = photo.trimap
            if "photo" in query or "example" in query:
                sent = await uploaded_trimap(request, photo)
                trimap = trimap if sent is None else sent
            result = await run_in_threadpool(
                service.predict, photo, trimap, options, stopper(request)
            )
        result["photo"] = photo_id
        return JSONResponse(result)

    @_json_errors
    async def result_file(request):
        data, download_name = service.result_file(
            request.path_params["result_id"], request.path_params["file"]
        )
        headers = {"Cache-Control": "no-store"}
        if request.query_params.get("download"):
            headers["Content-Disposition"] = f'attachment; filename="{download_name}"'
        return Response(data, media_type="image/png", headers=headers)

    routes = [
        Route("/", index),
        Route("/api/info", info),
        Route("/api/examples/{name}", example_image),
        Route("/api/photos", photos, methods=["POST"]),
        Route("/api/photos/{photo_id}/trimap", photo_trimap, methods=["POST"]),
        Route("/api/photos/{photo_id}/auto-trimap", auto_trimap, methods=["POST"]),
        Route("/api/photos/{photo_id}/{file}", photo_file),
        Route("/api/predict", predict, methods=["POST"]),
        Route("/api/results/{result_id}/{file}", result_file),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    if allowed_hosts is None:
        guard = Middleware(RequestGuard, hosts=LOOPBACK_NAMES, any_port=True)
    else:
        guard = Middleware(RequestGuard, hosts=list(allowed_hosts))
    app = Starlette(routes=routes, middleware=[guard])
    app.state.service = service
    app.state.request_header = REQUEST_HEADER
    return app
