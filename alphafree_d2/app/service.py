"""The work behind the demo page's routes, without any HTTP: photos, predictions, auto trimaps,
the stores of recent photos and results, and the limits on concurrent work.

Limits: one inference at a time per model (a lock each; the closed-form reference has its own);
at most ``1 + max_waiting`` requests that run models in progress at once (the rest get
:class:`Busy`, 503 with Retry-After); a request whose client went away (``should_stop()``) stops
before each model's inference and before each post-processing step (:class:`ClientGone`).
Photos and results are kept in memory, the latest ``max_items`` of each.
"""

import logging
import math
import threading
import time
import uuid
from collections import OrderedDict, deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Dict, Mapping, Optional, Tuple

import numpy as np

from ..inference.batch import alpha_to_png
from ..inference.foreground import estimate_foreground, make_cutout
from ..inference.predictor import NonFiniteAlphaError
from .examples import Example
from .images import difference_image, encode_png, safe_name
from .trimaps import (
    DEFAULT_REFERENCE_MAX_UNKNOWN,
    apply_known_regions,
    closed_form_alpha,
    trimap_from_alpha,
)

__all__ = [
    "DemoModel",
    "PredictOptions",
    "Photo",
    "PageError",
    "Busy",
    "ClientGone",
    "AdmissionQueue",
    "MattingService",
    "REFERENCE_NAME",
]

logger = logging.getLogger(__name__)

REFERENCE_NAME = "closed-form"
PHOTOS_URL = "/api/photos/"
RESULTS_URL = "/api/results/"


@dataclass
class DemoModel:
    """A model shown on the page.

    Attributes:
        name: short label ("A", "B", ...), also used in download file names.
        predictor: uint8 (H, W, 3) RGB -> float (H, W) alpha in [0, 1], e.g. a
            :class:`~alphafree_d2.inference.MattingPredictor`; a trimap-guided one is called as
            ``predictor(image, trimap)`` with a uint8 (H, W) {0, 128, 255} trimap.
        description: what it is (checkpoint, config), shown under the label.
        trimap_input: whether it is trimap-guided; default: the predictor's ``trimap_input``
            attribute (False when it has none).
    """

    name: str
    predictor: Callable[..., np.ndarray]
    description: str = ""
    trimap_input: Optional[bool] = None

    def __post_init__(self):
        if self.trimap_input is None:
            self.trimap_input = bool(getattr(self.predictor, "trimap_input", False))

    @property
    def can_refine(self) -> bool:
        """Whether per-photo refinement applies: a trimap-guided model whose predictor has a
        ``refine(image, trimap, steps=N)`` method."""
        return self.trimap_input and callable(getattr(self.predictor, "refine", None))


@dataclass(frozen=True)
class PredictOptions:
    """Options of one prediction (the query parameters of ``POST /api/predict``).

    Attributes:
        reference: also run closed-form matting with the same trimap (a column of its own).
        refine_steps: > 0: each trimap-guided model is first fine-tuned on the photo with its
            trimap for this many steps (its predictor's ``refine``, e.g.
            :meth:`~alphafree_d2.inference.MattingPredictor.refine`; the loaded model itself is
            unchanged); automatic models are run as usual.
    """

    reference: bool = False
    refine_steps: int = 0


@dataclass
class Photo:
    """A photo the page works on: uint8 (H, W, 3) RGB ``image`` (upright) and its PNG; an
    example's own ``trimap``; the automatic models' alphas, computed once (index -> (alpha,
    seconds))."""

    name: str
    image: np.ndarray
    png: bytes
    trimap: Optional[np.ndarray] = None
    turned: bool = False  # turned upright by its EXIF orientation
    alphas: Dict[int, Tuple[np.ndarray, float]] = field(default_factory=dict)

    @property
    def size(self):
        return self.image.shape[:2]


class PageError(Exception):
    """An expected failure: HTTP ``status`` and a message for the page."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class Busy(PageError):
    """Too many requests in progress; ``retry_after`` seconds is a fair wait."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(503, message)
        self.retry_after = retry_after


class ClientGone(Exception):
    """The client of a request disconnected; its remaining work was skipped."""


class AdmissionQueue:
    """Counts the requests in progress (running or waiting for a model) and admits at most
    ``limit`` at once."""

    def __init__(self, limit: int):
        if limit < 1:
            raise ValueError(f"the admission limit must be >= 1, got {limit}")
        self.limit = limit
        self._count = 0
        self._changed = threading.Condition()
        self._durations = deque(maxlen=8)  # seconds of recent admitted requests

    @property
    def count(self) -> int:
        return self._count

    def wait_for_count(self, count: int, timeout: float) -> bool:
        """Block until exactly ``count`` requests are in progress (False after ``timeout``
        seconds); for monitoring and tests."""
        with self._changed:
            return self._changed.wait_for(lambda: self._count == count, timeout)

    def retry_after(self) -> int:
        """Seconds after which a refused request may find room: the recent mean duration,
        times the requests ahead, in [1, 120]."""
        mean = sum(self._durations) / len(self._durations) if self._durations else 1.0
        return int(min(120, max(1, math.ceil(mean * self._count / self.limit))))

    @contextmanager
    def admitted(self, what: str):
        """Run the block as one admitted request, or raise :class:`Busy`."""
        with self._changed:
            if self._count >= self.limit:
                retry = self.retry_after()
                raise Busy(
                    f"the server is busy ({self._count} request{'s' if self._count != 1 else ''} "
                    f"running or waiting for a model); {what} was not started. Try again in "
                    f"{retry} s",
                    retry,
                )
            self._count += 1
            self._changed.notify_all()
        start = time.perf_counter()
        try:
            yield
        finally:
            with self._changed:
                self._count -= 1
                self._durations.append(time.perf_counter() - start)
                self._changed.notify_all()


class _Store:
    """The latest ``size`` items by id (an id no longer kept reads as None)."""

    def __init__(self, size: int):
        self.size = size
        self._items = OrderedDict()
        self._lock = threading.Lock()

    def add(self, item) -> str:
        key = uuid.uuid4().hex
        with self._lock:
            self._items[key] = item
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return key

    def get(self, key):
        with self._lock:
            return self._items.get(key)


def _alpha_problem(name, alpha, size, photo_name):
    """Why ``alpha`` cannot be shown (wrong shape, non-finite values), or None."""
    if alpha.shape != tuple(size):
        return (
            f"model {name} returned alpha of shape {alpha.shape} for an image of "
            f"{size[0]}x{size[1]}"
        )
    bad = alpha.size - int(np.count_nonzero(np.isfinite(alpha)))
    if bad:
        return (
            f"model {name} returned {bad} non-finite alpha values (NaN or infinity) of "
            f"{alpha.size} on {photo_name}; its weights are probably damaged (a diverged or "
            "corrupted checkpoint), so no matte is shown"
        )
    return None


class MattingService:
    """Predictions for the page (see the module docstring).

    Args:
        models: :class:`DemoModel` s, shown in this order.
        examples: name -> :class:`~alphafree_d2.app.examples.Example`.
        max_items: photos, and results, kept for display and download.
        max_waiting: requests that may wait while others run models.
        reference_max_unknown: see :func:`~alphafree_d2.app.trimaps.closed_form_alpha`.
    """

    def __init__(
        self,
        models,
        examples: Mapping[str, Example],
        max_items: int = 8,
        max_waiting: int = 2,
        reference_max_unknown: int = DEFAULT_REFERENCE_MAX_UNKNOWN,
    ):
        self.models = list(models)
        self.examples = dict(examples)
        self.photos = _Store(max_items)
        self.results = _Store(max_items)
        self.queue = AdmissionQueue(1 + max_waiting)
        self.reference_max_unknown = reference_max_unknown
        self._model_locks = [threading.Lock() for _ in self.models]
        self._reference_lock = threading.Lock()
        self._example_cache = {}
        self._example_lock = threading.Lock()

    @property
    def needs_trimap(self) -> bool:
        return any(m.trimap_input for m in self.models)

    # -- photos ---------------------------------------------------------------------------

    def example(self, name: str) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """(image, trimap or None) of an example, loaded once."""
        if name not in self.examples:
            raise PageError(404, f"no example named {name!r}")
        with self._example_lock:
            if name not in self._example_cache:
                example = self.examples[name]
                image = example.image()
                trimap = None if example.trimap is None else example.trimap()
                if trimap is not None and trimap.shape != image.shape[:2]:
                    raise PageError(
                        400,
                        f"the trimap {example.trimap_name} is {trimap.shape[1]}x"
                        f"{trimap.shape[0]} px but the example {name} is {image.shape[1]}x"
                        f"{image.shape[0]} px: it must have the photo's size",
                    )
                self._example_cache[name] = (image, trimap)
            return self._example_cache[name]

    def add_photo(self, image, name, trimap=None, turned=False) -> Tuple[str, Photo]:
        photo = Photo(name, image, encode_png(image), trimap, turned)
        return self.photos.add(photo), photo

    def photo(self, photo_id: str) -> Photo:
        photo = self.photos.get(photo_id)
        if photo is None:
            raise PageError(
                404, "this photo is no longer kept (only the latest ones are); upload it again"
            )
        return photo

    @staticmethod
    def photo_answer(photo_id: str, photo: Photo) -> dict:
        url = f"{PHOTOS_URL}{photo_id}/"
        return {
            "photo": photo_id,
            "name": photo.name,
            "width": int(photo.image.shape[1]),
            "height": int(photo.image.shape[0]),
            "image": url + "image.png",
            "trimap": None if photo.trimap is None else url + "trimap.png",
        }

    def photo_file(self, photo_id: str, file: str) -> bytes:
        photo = self.photo(photo_id)
        if file == "image.png":
            return photo.png
        if file == "trimap.png" and photo.trimap is not None:
            return encode_png(photo.trimap)
        raise PageError(404, f"photo {photo_id} has no file {file!r}")

    # -- models ---------------------------------------------------------------------------

    def model_index(self, name: str) -> int:
        for index, model in enumerate(self.models):
            if model.name == name:
                return index
        raise PageError(404, f"no model named {name!r}")

    def _alpha(self, index, photo, trimap, should_stop, refine_steps=0):
        """(alpha, seconds) of model ``index`` on the photo (a trimap-guided one refined on it
        first when ``refine_steps`` > 0); raises PageError(500) with the model named when it
        fails or returns an alpha that cannot be shown, PageError(400) when it cannot be
        refined."""
        model = self.models[index]
        if not model.trimap_input and index in photo.alphas:
            return photo.alphas[index]
        refine = bool(refine_steps) and model.trimap_input
        if refine and not model.can_refine:
            raise PageError(
                400,
                f"model {model.name} cannot be refined on a photo (its predictor has no refine)",
            )
        with self._model_locks[index]:  # one inference at a time per model
            if should_stop():
                raise ClientGone()
            start = time.perf_counter()
            try:
                if refine:
                    alpha = model.predictor.refine(photo.image, trimap, steps=refine_steps)
                else:
                    args = (photo.image, trimap) if model.trimap_input else (photo.image,)
                    alpha = model.predictor(*args)
                alpha = np.asarray(alpha, dtype=np.float32)
            except NonFiniteAlphaError as e:  # an expected refusal: one line, no traceback
                logger.error("model %s on %s: %s", model.name, photo.name, e)
                raise PageError(500, f"model {model.name} on {photo.name}: {e}") from e
            except Exception as e:  # out of memory, a model that cannot take this size, ...
                logger.exception("model %s failed on %s", model.name, photo.name)
                raise PageError(
                    500, f"model {model.name} failed on {photo.name}: {type(e).__name__}: {e}"
                ) from e
            seconds = time.perf_counter() - start
        problem = _alpha_problem(model.name, alpha, photo.size, photo.name)
        if problem:
            logger.error(problem)
            raise PageError(500, problem)
        if model.trimap_input:
            return apply_known_regions(alpha, trimap), seconds
        photo.alphas[index] = (alpha, seconds)
        return alpha, seconds

    def auto_trimap(self, photo, model_name, low, high, band, should_stop=lambda: False):
        """The trimap of an automatic model's alpha on the photo (:func:`trimap_from_alpha`)."""
        index = self.model_index(model_name)
        if self.models[index].trimap_input:
            raise PageError(
                400, f"model {model_name} is trimap-guided: an auto trimap needs an automatic one"
            )
        alpha, _ = self._alpha(index, photo, None, should_stop)
        return trimap_from_alpha(alpha, low, high, band)

    def _reference(self, photo, trimap, should_stop):
        with self._reference_lock:
            if should_stop():
                raise ClientGone()
            start = time.perf_counter()
            try:
                alpha, solved = closed_form_alpha(photo.image, trimap, self.reference_max_unknown)
            except ValueError as e:
                raise PageError(400, f"{REFERENCE_NAME}: {e}") from None
            return alpha, time.perf_counter() - start, solved

    # -- predictions ----------------------------------------------------------------------

    def predict(
        self,
        photo: Photo,
        trimap: Optional[np.ndarray] = None,
        options: PredictOptions = PredictOptions(),
        should_stop: Callable[[], bool] = lambda: False,
    ) -> dict:
        """Every model (and the reference, when asked) on the photo; the answer of
        ``POST /api/predict`` (see :mod:`alphafree_d2.app.matting_app`).

        A model that fails or returns an alpha that cannot be shown (wrong shape, NaN) gets an
        ``error`` instead of pictures; when every model fails, PageError(500) with their
        messages. Raises ClientGone when ``should_stop()`` says the client left.
        """
        if trimap is None and (self.needs_trimap or options.reference):
            guided = [m.name for m in self.models if m.trimap_input]
            who = f"model {', '.join(guided)}" if guided else "the closed-form reference"
            raise PageError(
                400,
                f"{who} needs a trimap: send it with the photo (POST /api/photos, then "
                "POST /api/predict?photo=ID with the trimap file as the body)",
            )
        start = time.perf_counter()
        files = {"input.png": (photo.png, f"{photo.name}.png")}
        if trimap is not None:
            files["trimap.png"] = (encode_png(trimap), f"{photo.name}_trimap.png")
        several = len(self.models) + bool(options.reference) > 1
        entries, alphas = [], []
        for index, model in enumerate(self.models):
            kind = "trimap" if model.trimap_input else "automatic"
            try:
                alpha, seconds = self._alpha(
                    index, photo, trimap, should_stop, options.refine_steps
                )
            except PageError as e:
                entries.append({"name": model.name, "kind": kind, "error": str(e)})
                alphas.append(None)
                continue
            entry = self._pictures(
                files, photo, alpha, model.name, str(index), several, should_stop
            )
            entry.update(kind=kind, seconds={"alpha": round(seconds, 3), **entry["seconds"]})
            if options.refine_steps and model.trimap_input:
                entry["note"] = f"refined on this photo: {options.refine_steps} steps"
            entries.append(entry)
            alphas.append(alpha)
        if options.reference:
            try:
                alpha, seconds, solved = self._reference(photo, trimap, should_stop)
            except PageError as e:
                entries.append({"name": REFERENCE_NAME, "kind": "reference", "error": str(e)})
            else:
                entry = self._pictures(
                    files, photo, alpha, REFERENCE_NAME, "ref", True, should_stop
                )
                entry.update(
                    kind="reference", seconds={"alpha": round(seconds, 3), **entry["seconds"]}
                )
                if tuple(solved) != tuple(photo.size):
                    entry["note"] = f"solved at {solved[1]}\u00d7{solved[0]} px, upscaled"
                entries.append(entry)
        if not any("alpha" in entry for entry in entries):
            raise PageError(500, "; ".join(e["error"] for e in entries if "error" in e))
        difference = None
        if len(alphas) == 2 and alphas[0] is not None and alphas[1] is not None:
            a, b = alphas
            files["difference.png"] = (
                encode_png(difference_image(a, b)),
                f"{photo.name}_difference.png",
            )
            gap = np.abs(a - b)
            difference = {
                "image": "difference.png",
                "mean_abs": round(float(gap.mean()), 5),
                "max_abs": round(float(gap.max()), 5),
            }
        result_id = self.results.add({"files": files})
        prefix = f"{RESULTS_URL}{result_id}/"
        for entry in entries:
            for key in ("alpha", "cutout"):
                if key in entry:
                    entry[key] = prefix + entry[key]
        if difference is not None:
            difference["image"] = prefix + difference["image"]
        total = time.perf_counter() - start
        logger.info(
            "%s (%dx%d): %s in %.2f s",
            photo.name,
            photo.size[1],
            photo.size[0],
            ", ".join(_timing(entry) for entry in entries),
            total,
        )
        return {
            "id": result_id,
            "name": photo.name,
            "width": int(photo.size[1]),
            "height": int(photo.size[0]),
            "input": prefix + "input.png",
            "trimap": prefix + "trimap.png" if trimap is not None else None,
            "models": entries,
            "difference": difference,
            "seconds": round(total, 3),
        }

    def _pictures(self, files, photo, alpha, name, key, several, should_stop):
        """Alpha and cutout PNGs of one column into ``files``; its answer entry."""
        if should_stop():  # the foreground estimation costs as much as a small model
            raise ClientGone()
        start = time.perf_counter()
        cutout = make_cutout(estimate_foreground(photo.image, alpha, photo.name), alpha)
        seconds = time.perf_counter() - start
        label = f"{photo.name}_{safe_name(name)}" if several else photo.name
        files[f"alpha_{key}.png"] = (encode_png(alpha_to_png(alpha)), f"{label}_alpha.png")
        files[f"cutout_{key}.png"] = (encode_png(cutout), f"{label}_cutout.png")
        return {
            "name": name,
            "alpha": f"alpha_{key}.png",
            "cutout": f"cutout_{key}.png",
            "seconds": {"cutout": round(seconds, 3)},
        }

    def result_file(self, result_id: str, file: str) -> Tuple[bytes, str]:
        """(PNG bytes, download name) of a kept result's file."""
        result = self.results.get(result_id)
        if result is None:
            raise PageError(
                404, "this result is no longer kept (only the latest ones are); run it again"
            )
        if file not in result["files"]:
            raise PageError(404, f"result {result_id} has no file {file!r}")
        return result["files"][file]


def _timing(entry) -> str:
    if "error" in entry:
        return f"{entry['name']} failed"
    return f"{entry['name']} {entry['seconds']['alpha']:.2f} s"
