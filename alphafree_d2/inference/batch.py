"""Folders of photos in, alpha mattes / cutouts / composites out: what ``tools/predict.py`` runs.

Output layout for an input ``.../<stem>.<ext>``::

    OUTPUT/alpha/<stem>.png       8-bit (or 16-bit) grayscale alpha
    OUTPUT/cutout/<stem>.png      RGBA: estimated foreground colours + alpha
    OUTPUT/composite/<stem>.png   RGB, only when a background is given

Rules: every PNG is written to a hidden temporary file in its folder and renamed into place,
so an interrupted run leaves only complete PNGs (and perhaps a ``.<name>.tmp-*`` file), and a
later run's "already done" check can trust what it finds. A job whose outputs all exist is
skipped unless ``overwrite``; otherwise only its missing outputs are written. Inputs that cannot
be used (missing path, folder without images, undecodable file, two inputs with one stem) are
reported as :class:`Problem` s and the rest of the batch goes on; files of other types in an
input folder are listed by :func:`unsupported_files` (the tool warns about them). The output
folders are created and tried (:func:`check_output_folders`) before any image is processed,
after :func:`check_outputs_apart` made sure that no output can be an input (a photo, a trimap,
the background) or land in an input folder.

Photos are processed upright (EXIF orientation applied), so the outputs line up with the input
as viewers display it. A trimap (trimap-guided models) of the photo's stored size is taken to
belong to the stored pixels, like the photo file itself, and is turned the same way; a trimap
of the upright size (a photo turned by 90 degrees, the trimap drawn on it as shown) is taken as
it is. Any other size is an error that names both sizes of the photo.

Ctrl+C (SIGINT) stops the batch after the image being processed, whether the interrupt lands
in Python or in a compiled solver that swallows it (pymatting's numba code reports it as
"SystemError: ... returned a result with an exception set"): :func:`run_jobs` returns with
``interrupted`` set, the finished outputs stay, and no partial file is left (atomic writes).
"""

import os
import signal
import sys
import tempfile
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import ExifTags, Image, ImageOps

from ..data.io import IMAGE_EXTENSIONS, check_image_pixels, read_image, read_trimap
from ..utils.file_io import write_png
from .foreground import composite, estimate_foreground, make_cutout, parse_color

__all__ = [
    "Problem",
    "MattingJob",
    "BatchResult",
    "collect_inputs",
    "unsupported_files",
    "plan_jobs",
    "check_outputs_apart",
    "check_output_folders",
    "remove_created_folders",
    "read_input_image",
    "load_background",
    "assign_trimaps",
    "run_jobs",
]


OUTPUT_KINDS = ("alpha", "cutout", "composite")


@dataclass
class Problem:
    """An input that was not (fully) processed, and why."""

    path: str
    reason: str

    def __str__(self):
        return f"{self.path}: {self.reason}"


@dataclass
class MattingJob:
    """One input image, the output files it should produce (kind -> path) and, for a
    trimap-guided model, the trimap file to predict with."""

    source: str
    stem: str
    outputs: Dict[str, str]
    trimap: Optional[str] = None

    def missing_outputs(self) -> List[str]:
        return [kind for kind, path in self.outputs.items() if not os.path.isfile(path)]


@dataclass
class BatchResult:
    """What :func:`run_jobs` did; ``interrupted``: stopped by Ctrl+C before the end."""

    written: int = 0
    skipped: int = 0
    problems: List[Problem] = field(default_factory=list)
    interrupted: bool = False


def collect_inputs(paths: Sequence[str]) -> Tuple[List[str], List[Problem]]:
    """Expand files and folders (not recursively) into a list of image files.

    A folder contributes its files with an extension in
    :data:`~alphafree_d2.data.io.IMAGE_EXTENSIONS` (sorted; hidden files skipped); a file is taken whatever its extension (decoding decides). The same
    file named twice is kept once.

    Returns:
        (files, problems): problems for missing paths and folders without images.
    """
    files, problems, seen = [], [], set()

    def add(path):
        key = os.path.realpath(path)
        if key not in seen:
            seen.add(key)
            files.append(path)

    for path in paths:
        if os.path.isdir(path):
            images, _ = _folder_files(path)
            if not images:
                problems.append(
                    Problem(path, f"folder contains no images ({', '.join(IMAGE_EXTENSIONS)})")
                )
            for image in images:
                add(image)
        elif os.path.isfile(path):
            add(path)
        else:
            problems.append(Problem(path, "no such file or folder"))
    return files, problems


def _folder_files(folder: str) -> Tuple[List[str], List[str]]:
    """(images, others): the non-hidden files directly in ``folder``, sorted, split by whether
    their extension is in :data:`IMAGE_EXTENSIONS`."""
    images, others = [], []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if name.startswith(".") or not os.path.isfile(path):
            continue
        (images if name.lower().endswith(IMAGE_EXTENSIONS) else others).append(path)
    return images, others


def unsupported_files(paths: Sequence[str]) -> List[str]:
    """The files that :func:`collect_inputs` leaves out of the folders among ``paths``: not
    hidden, with an extension outside :data:`IMAGE_EXTENSIONS` (``.gif``, ``.txt``, ...)."""
    return [f for path in paths if os.path.isdir(path) for f in _folder_files(path)[1]]


def _identity(path: str):
    """Keys under which a path is the same file or folder as another: its resolved path
    (symlinks, ``..``) and, when it exists, its device and inode (hard links, case-insensitive
    file systems)."""
    keys = {os.path.realpath(path)}
    try:
        st = os.stat(path)
        keys.add((st.st_dev, st.st_ino))
    except OSError:
        pass
    return keys


def _folders_up(path: str):
    """``path`` resolved and every folder above it, innermost first."""
    current = os.path.realpath(path)
    while True:
        yield current
        parent = os.path.dirname(current)
        if parent == current:
            return
        current = parent


def check_outputs_apart(
    jobs: Sequence[MattingJob], inputs: Sequence[str] = (), others: Sequence[str] = ()
) -> None:
    """Refuse, before anything is written, outputs that would be inputs.

    Args:
        jobs: the planned jobs (their ``source``, ``trimap`` and ``outputs``).
        inputs: the input paths as given (files and folders, e.g. ``--input``, ``--trimap``).
        others: other files read, e.g. the background image of the composites.

    Raises:
        ValueError: naming the input and the output when an output path is an input file
            (symlinks, ``..``, hard links and case-insensitive names included), or when an
            input file or folder lies in (or is) a folder that outputs are written to.
    """
    files = [j.source for j in jobs] + [j.trimap for j in jobs if j.trimap] + list(others)
    by_key = {key: f for f in files for key in _identity(f)}
    folders = {}
    for job in jobs:
        for path in job.outputs.values():
            clash = next((by_key[k] for k in _identity(path) if k in by_key), None)
            if clash is not None:
                raise ValueError(
                    f"the output {path} would be the input {clash}; nothing was written. "
                    "Choose an --output folder apart from the inputs"
                )
            folder = os.path.dirname(os.path.abspath(path))
            folders.update({key: folder for key in _identity(folder)})
    seen = set()
    for given in list(inputs) + files:
        for current in _folders_up(given):
            if current in seen:
                break  # this folder and those above it were checked for an earlier input
            seen.add(current)
            folder = next((folders[k] for k in _identity(current) if k in folders), None)
            if folder is not None:
                raise ValueError(
                    f"the input {given} lies in the output folder {folder}, where outputs "
                    "would be taken for inputs or replace them; nothing was written. Choose an "
                    "--output folder apart from the inputs"
                )


def check_output_folders(jobs: Sequence[MattingJob]) -> List[str]:
    """Create the folders the outputs of ``jobs`` go to and write (then remove) a test file in
    each, so that an unusable output folder stops a batch before any image is processed.

    Returns:
        the folders this call created (parents included, outermost first), for
        :func:`remove_created_folders` when the batch stops before writing anything.

    Raises:
        OSError naming the folder that cannot be created or written.
    """
    folders = sorted(
        {os.path.dirname(os.path.abspath(p)) for job in jobs for p in job.outputs.values()}
    )
    created = []
    for folder in folders:
        missing, parent = [], folder
        while parent and not os.path.exists(parent):
            missing.append(parent)
            parent = os.path.dirname(parent)
        try:
            os.makedirs(folder, exist_ok=True)
            created += [f for f in reversed(missing) if f not in created]
            fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=folder)
            os.close(fd)
            os.remove(probe)
        except OSError as e:
            raise OSError(
                e.errno,
                f"output folder {folder} cannot be created or written ({e.strerror or e}); "
                "choose another --output or fix its permissions",
            ) from e
    return created


def remove_created_folders(created: Sequence[str]) -> None:
    """Remove the folders :func:`check_output_folders` created, innermost first, where they are
    still empty (a batch that stopped before writing leaves no trace)."""
    for folder in sorted(created, key=len, reverse=True):
        try:
            os.rmdir(folder)
        except OSError:  # not empty, or already gone: leave it
            pass


def exif_orientation(path: str) -> int:
    """The EXIF orientation of an image file, 1-8 (1, upright, when absent or unreadable)."""
    try:
        with Image.open(path) as im:
            return int(im.getexif().get(ExifTags.Base.Orientation, 1))
    except Exception:  # not an image PIL knows, or broken metadata: pixels as stored
        return 1


def _orient(array: np.ndarray, orientation: int) -> np.ndarray:
    """``array`` (H, W) or (H, W, 3) as an EXIF ``orientation`` (1-8) says to show it."""
    if orientation == 1:
        return array
    pil = Image.fromarray(array)
    pil.getexif()[ExifTags.Base.Orientation] = orientation
    return np.asarray(ImageOps.exif_transpose(pil))


def read_input_image(path: str) -> np.ndarray:
    """uint8 (H, W, 3) RGB as an image viewer shows it: :func:`read_image` (grayscale, RGBA,
    16-bit handled; refused above the pixel cap before decoding) turned upright by the EXIF
    orientation that phone cameras write.

    The pixels are decoded by OpenCV (as everywhere in the package), the orientation read by PIL
    and applied by ``PIL.ImageOps.exif_transpose``.
    """
    return _orient(read_image(path, "RGB"), exif_orientation(path))


def read_input_trimap(path: str, image_path: str) -> np.ndarray:
    """The trimap ``path`` for the photo ``image_path``, lined up with the upright photo of
    :func:`read_input_image` (module docstring): turned like the photo when it has the photo's
    stored size, as it is when it has the upright size.

    Raises:
        ValueError: the sizes differ, naming both files and, for a turned photo, both of its
            sizes.
    """
    trimap = read_trimap(path)
    orientation = exif_orientation(image_path)
    height, width = check_image_pixels(image_path)  # the stored size, from the header
    upright = (width, height) if orientation in (5, 6, 7, 8) else (height, width)
    if trimap.shape == (height, width):
        return _orient(trimap, orientation)
    if trimap.shape == upright:
        return trimap
    turned = (
        f" (as shown: its EXIF orientation {orientation} turns the stored {width}x{height} pixels)"
        if orientation != 1
        else ""
    )
    raise ValueError(
        f"the trimap {path} is {trimap.shape[1]}x{trimap.shape[0]} (WxH) but the image is "
        f"{upright[1]}x{upright[0]}{turned}; they must have the same size"
    )


def load_background(spec: str):
    """``--composite`` value -> RGB colour tuple or uint8 RGB image (ValueError if neither)."""
    color = parse_color(spec)
    if color is not None:
        return color
    if not os.path.isfile(spec):
        raise ValueError(
            f"--composite {spec!r} is neither a colour (name, #RRGGBB, R,G,B) nor an image file"
        )
    return read_image(spec, "RGB")


def assign_trimaps(jobs: Sequence[MattingJob], spec: str) -> Tuple[List[MattingJob], List[Problem]]:
    """Set ``job.trimap`` from ``--trimap`` (a folder: ``<stem>.<ext>`` per job; a file: the
    one job's). Returns (jobs that have a trimap, problems for those that have none); raises
    ValueError when ``spec`` is neither, or one file for several jobs."""
    if os.path.isfile(spec):
        if len(jobs) != 1:
            raise ValueError(
                f"--trimap {spec} is one file but there are {len(jobs)} input images; pass a "
                f"folder with <stem>.<ext> per image"
            )
        jobs[0].trimap = spec
        return list(jobs), []
    if not os.path.isdir(spec):
        raise ValueError(f"--trimap {spec}: no such file or folder")
    by_stem = {}
    for name in sorted(os.listdir(spec)):
        stem, ext = os.path.splitext(name)
        if ext.lower() in IMAGE_EXTENSIONS and not name.startswith("."):
            by_stem.setdefault(stem, os.path.join(spec, name))
    found, problems = [], []
    for job in jobs:
        if job.stem in by_stem:
            job.trimap = by_stem[job.stem]
            found.append(job)
        else:
            missing = f"no trimap {os.path.join(spec, job.stem)}.* found"
            problems.append(Problem(job.source, missing))
    return found, problems


def plan_jobs(
    files: Sequence[str], output_dir: str, with_composite: bool
) -> Tuple[List[MattingJob], List[Problem]]:
    """One job per file, named by its stem. Files that share a stem (``a/cat.jpg`` and
    ``b/cat.png``) would overwrite each other's outputs: none of them gets a job, each gets a
    :class:`Problem` naming the others."""
    kinds = OUTPUT_KINDS if with_composite else OUTPUT_KINDS[:2]
    by_stem = defaultdict(list)
    for path in files:
        by_stem[os.path.splitext(os.path.basename(path))[0]].append(path)
    jobs, problems = [], []
    for path in files:
        stem = os.path.splitext(os.path.basename(path))[0]
        clash = by_stem[stem]
        if len(clash) > 1:
            others = ", ".join(p for p in clash if p != path)
            problems.append(
                Problem(
                    path,
                    f"its outputs ({stem}.png) would collide with those of {others}; none of "
                    f"them was processed (rename one, or run them with different --output)",
                )
            )
            continue
        outputs = {kind: os.path.join(output_dir, kind, stem + ".png") for kind in kinds}
        jobs.append(MattingJob(path, stem, outputs))
    return jobs, problems


def alpha_to_png(alpha: np.ndarray, sixteen_bit: bool = False) -> np.ndarray:
    """float (H, W) in [0, 1] -> uint8 (or uint16) (H, W)."""
    top, dtype = (65535.0, np.uint16) if sixteen_bit else (255.0, np.uint8)
    return np.round(np.clip(alpha, 0.0, 1.0) * top).astype(dtype)


class _InterruptFlag:
    """Records SIGINT (Ctrl+C) while installed, and raises KeyboardInterrupt as Python does;
    ``set`` stays True even when compiled code swallows that exception. A process that ignores
    SIGINT (started in the background by a shell, or under ``nohup``) keeps ignoring it."""

    def __init__(self):
        self.set = False
        self._previous = None

    def _handler(self, signum, frame):
        self.set = True
        raise KeyboardInterrupt

    def __enter__(self):
        if (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN
        ):
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def run_jobs(
    predictor: Callable[[np.ndarray], np.ndarray],
    jobs: Sequence[MattingJob],
    *,
    background=None,
    sixteen_bit: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> BatchResult:
    """Predict and write the outputs of ``jobs``; one failing input does not stop the others,
    Ctrl+C stops the batch (module docstring; ``result.interrupted``).

    Args:
        predictor: uint8 (H, W, 3) RGB [, uint8 (H, W) trimap for jobs with a ``trimap``]
            -> float (H, W) alpha in [0, 1], e.g. a
            :class:`~alphafree_d2.inference.predictor.MattingPredictor` (which raises
            :class:`~alphafree_d2.inference.predictor.NonFiniteAlphaError` for a broken
            model's NaN output: that image fails, with nothing written for it).
        background: for the "composite" outputs: an RGB colour (3 ints) or a uint8 RGB image.
        sixteen_bit: write alpha as 16-bit PNG.
        overwrite: rewrite existing outputs (otherwise only missing ones are written and jobs
            with all outputs present are skipped).
    """
    from tqdm import tqdm

    result = BatchResult()
    todo = []
    for job in jobs:
        if overwrite or job.missing_outputs():
            todo.append(job)
        else:
            result.skipped += 1
    bar = tqdm(todo, desc="matting", unit="image", disable=not progress)
    with _InterruptFlag() as interrupt:
        for job in bar:
            bar.set_postfix_str(os.path.basename(job.source), refresh=False)
            try:
                _run_job(predictor, job, background, sixteen_bit, overwrite)
                result.written += 1
            except KeyboardInterrupt:
                interrupt.set = True
            except Exception as e:  # report and go on with the rest of the batch
                if interrupt.set:  # an interrupt that compiled code turned into an error
                    break
                message = str(e)
                if message.startswith(f"{job.source}: "):  # the readers name the file already
                    message = message[len(job.source) + 2 :]
                problem = Problem(job.source, f"{type(e).__name__}: {message}")
                result.problems.append(problem)
                bar.write(f"failed: {problem}", file=sys.stderr)
            if interrupt.set:
                break
    bar.close()
    result.interrupted = interrupt.set
    return result


def _run_job(predictor, job, background, sixteen_bit, overwrite):
    kinds = list(job.outputs) if overwrite else job.missing_outputs()
    image = read_input_image(job.source)
    if job.trimap is None:
        alpha = predictor(image)
    else:
        alpha = predictor(image, read_input_trimap(job.trimap, job.source))
    if "alpha" in kinds:
        write_png(job.outputs["alpha"], alpha_to_png(alpha, sixteen_bit))
    if "cutout" in kinds or "composite" in kinds:
        foreground = estimate_foreground(image, alpha, name=job.source)
        if "cutout" in kinds:
            write_png(job.outputs["cutout"], make_cutout(foreground, alpha), order="RGB")
        if "composite" in kinds:
            write_png(
                job.outputs["composite"], composite(foreground, alpha, background), order="RGB"
            )
