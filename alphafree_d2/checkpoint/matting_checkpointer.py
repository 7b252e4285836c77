"""Checkpointing that survives being killed mid-write, reads files without running code from
them, explains bad files and refuses incomplete ones where a complete model is needed."""

import logging
import os
from collections import Counter

from detectron2.checkpoint import DetectionCheckpointer

from ..utils.file_io import atomic_write
from .safe_load import UnsafeCheckpointError, load_pickle_weights, load_torch_weights

__all__ = [
    "MattingCheckpointer",
    "CheckpointError",
    "INIT_CHECKPOINT_HINT",
    "PARTIAL_CHECKPOINT_FLAG",
    "load_trained_weights",
    "check_init_weights",
]

logger = logging.getLogger(__name__)

INIT_CHECKPOINT_HINT = (
    "Convert a pretrained backbone with\n"
    "  python tools/convert_pretrained.py --format dino PATH/dino_deitsmall16_pretrain.pth "
    "pretrained/dino_vit_s16.pth\n"
    "(or --format mae / timm), or train from scratch with train.init_checkpoint=''."
)

# The command-line flag of tools/lazyconfig_train_net.py (--eval-only) and tools/predict.py that
# accepts a checkpoint which leaves model weights random.
PARTIAL_CHECKPOINT_FLAG = "--allow-partial-checkpoint"


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, truncated, not a checkpoint, unsafe to read, or does not
    hold the model it is loaded into."""


class _AtomicWrites:
    """A path manager that delegates to another, except that local files opened for writing are
    :func:`~alphafree_d2.utils.file_io.atomic_write` contexts (temporary file + rename)."""

    def __init__(self, path_manager):
        self._path_manager = path_manager

    def open(self, path, mode="r", **kwargs):
        if "w" in mode and "://" not in path:
            return atomic_write(path, mode, **kwargs)
        return self._path_manager.open(path, mode, **kwargs)

    def __getattr__(self, name):
        return getattr(self._path_manager, name)


class MattingCheckpointer(DetectionCheckpointer):
    """:class:`DetectionCheckpointer` with atomic writes, code-free reading and clear errors.

    - fvcore's ``save`` and ``tag_last_checkpoint`` write through ``self.path_manager.open``;
      here that opens a temporary file in the same folder, renamed into place once complete, so
      a run killed at any moment leaves either the previous or the new checkpoint (and
      ``last_checkpoint``), never a truncated one that ``--resume`` would pick. A kill during
      the write can leave the temporary file (``.NAME.pth.tmp-*``):
      :meth:`remove_interrupted_writes` deletes those.
    - ``load`` reads every format detectron2 reads without executing code from the file:
      ``.pkl`` through a restricted unpickler (dicts, lists, numbers, strings, numpy arrays),
      anything else through ``torch.load(weights_only=True)``. A file that asks for more is
      refused with a :class:`CheckpointError` naming it.
    - ``load`` of a missing, truncated or foreign file raises :class:`CheckpointError` naming it.
    - ``incompatible`` holds the missing / unexpected / wrongly shaped keys of the last load
      (fvcore only logs them), and they are logged as one summary warning (how many tensors,
      in which modules) instead of fvcore's line per tensor.
    """

    def __init__(self, model, save_dir="", **kwargs):
        super().__init__(model, save_dir, **kwargs)
        self.path_manager = _AtomicWrites(self.path_manager)

    incompatible = None

    def remove_interrupted_writes(self):
        """Delete the temporary files that :meth:`save` leaves when killed mid-write
        (``.<checkpoint>.pth.tmp-*`` and ``.last_checkpoint.tmp-*`` in ``save_dir``); other
        files are not touched. Returns the names removed."""
        if not self.save_dir or not os.path.isdir(self.save_dir):
            return []
        removed = []
        for name in sorted(os.listdir(self.save_dir)):
            ours = name.startswith(".last_checkpoint.tmp-") or (
                name.startswith(".") and ".pth.tmp-" in name
            )
            if ours and os.path.isfile(os.path.join(self.save_dir, name)):
                os.remove(os.path.join(self.save_dir, name))
                removed.append(name)
        if removed:
            self.logger.info(f"Removed {len(removed)} unfinished checkpoint write(s): {removed}")
        return removed

    def load(self, path, checkpointables=None):
        if path and not os.path.isfile(path) and "://" not in path:
            raise CheckpointError(f"checkpoint {path} does not exist.\n{INIT_CHECKPOINT_HINT}")
        self.incompatible = None
        return super().load(path, checkpointables)

    def _log_incompatible_keys(self, incompatible):
        self.incompatible = incompatible
        problems = _problems(incompatible)
        if problems:
            self.logger.warning(
                f"Loading {self._loading}: {'; '.join(problems)}. Those of the model keep their "
                "initial values."
            )

    _loading = "the checkpoint"

    def _load_file(self, filename):
        self._loading = filename
        return self._read_file(filename)

    def _torch_load(self, f):
        return load_torch_weights(f)

    def _read_file(self, filename):
        try:
            if filename.endswith(".pkl"):
                return self._load_pkl(filename)
            if filename.endswith(".pyth"):
                return self._load_pycls(filename)
            return super()._load_file(filename)  # torch files, through _torch_load
        except UnsafeCheckpointError as e:
            raise CheckpointError(
                f"{filename}: refused to load: reading it would call {e}, which a file of "
                f"weights never needs (it could run code from the file). Only dicts, lists, "
                f"numbers, strings, tensors and numpy arrays are accepted. If you trust where "
                f"the file comes from, extract its weights yourself and save them with "
                f"torch.save({{'model': state_dict}}, 'weights.pth')."
            ) from e
        except Exception as e:  # unpickling a damaged file fails in many different ways
            raise CheckpointError(
                f"{filename}: cannot be read as a checkpoint ({type(e).__name__}: {e}). It may be "
                f"truncated by an interrupted copy or not a PyTorch/detectron2 checkpoint."
            ) from e

    def _load_pkl(self, filename):
        # The two .pkl layouts of DetectionCheckpointer._load_file, read by a restricted unpickler.
        with self.path_manager.open(filename, "rb") as f:
            data = load_pickle_weights(f)
        if "model" in data and "__author__" in data:  # detectron2 model zoo
            self.logger.info(f"Reading a file from '{data['__author__']}'")
            return data
        data = data.get("blobs", data)  # Detectron1 / Caffe2 model zoo
        data = {k: v for k, v in data.items() if not k.endswith("_momentum")}
        return {"model": data, "__author__": "Caffe2", "matching_heuristics": True}

    def _load_pycls(self, filename):
        # The .pyth layout of DetectionCheckpointer._load_file, read with weights_only=True.
        with self.path_manager.open(filename, "rb") as f:
            data = load_torch_weights(f)
        if "model_state" not in data:
            raise ValueError("pycls checkpoints must contain 'model_state'")
        model = {
            k: v for k, v in data["model_state"].items() if not k.endswith("num_batches_tracked")
        }
        return {"model": model, "__author__": "pycls", "matching_heuristics": True}


def _modules(keys):
    """'decoder.fusion (12), backbone.blocks (3)': the keys counted by the first two levels of
    the module that holds them."""
    counts = Counter(".".join(k.split(".")[:-1][:2]) or k for k in keys)
    return ", ".join(f"{m} ({n})" for m, n in counts.most_common())


def _problems(incompatible, ignore_missing_criterion=True):
    """What a load left out, as phrases: weights of the model not in the checkpoint (those of
    ``criterion.`` and BatchNorm counters are not needed to run a model), weights of other
    shapes (skipped), weights the model does not have. Empty when the load was complete."""
    shapes = incompatible.incorrect_shapes
    wrong = {key for key, _, _ in shapes}
    missing = [
        k
        for k in incompatible.missing_keys
        if k not in wrong
        and not (ignore_missing_criterion and k.startswith("criterion."))
        and not k.endswith("num_batches_tracked")
    ]
    unexpected = [k for k in incompatible.unexpected_keys if not k.startswith("criterion.")]
    problems = []
    if missing:
        problems.append(
            f"it lacks {len(missing)} weights of the model (in {_modules(missing)}; e.g. "
            f"{missing[0]})"
        )
    if shapes:
        key, shape_ckpt, shape_model = shapes[0]
        problems.append(
            f"{len(shapes)} weights differ in shape and are skipped (in {_modules(wrong)}; e.g. "
            f"{key}: {tuple(shape_ckpt)} in the checkpoint, {tuple(shape_model)} in the model)"
        )
    if unexpected:
        problems.append(
            f"it has {len(unexpected)} weights the model does not have (in "
            f"{_modules(unexpected)}; e.g. {unexpected[0]})"
        )
    return problems


def load_trained_weights(model, path, *, allow_partial=False):
    """Load ``path`` into ``model`` for evaluation or inference and insist that it holds this
    model: every weight present and of the model's shape, and no weights of another model.

    Weights of ``model.criterion`` and BatchNorm counters are not needed for that and are not
    required. Training from a pretrained backbone does not go through here (it loads with
    ``MattingCheckpointer.resume_or_load``, then :func:`check_init_weights`).

    Args:
        model: the model (or its DistributedDataParallel wrapper).
        path: a checkpoint file or URL.
        allow_partial: only warn (with the same summary) instead of raising.

    Raises:
        CheckpointError: a missing, unreadable or unsafe file, or one that leaves weights of the
            model unloaded or mismatched; the message counts them and names their modules.
    """
    checkpointer = MattingCheckpointer(model)
    checkpointer.load(path, checkpointables=[])
    incompatible = checkpointer.incompatible
    if incompatible is None:
        return
    problems = _problems(incompatible)
    if not problems:
        return
    message = (
        f"{path} does not hold the config's model: {'; '.join(problems)}. It looks like a "
        f"pretrained backbone or a model of another config; the model would run with random "
        f"or mismatched weights."
    )
    if allow_partial:
        logger.warning(f"{message} Going on anyway ({PARTIAL_CHECKPOINT_FLAG}).")
        return
    raise CheckpointError(
        f"{message} Use the config the checkpoint was trained with and the checkpoint written "
        f"by tools/lazyconfig_train_net.py (e.g. output/<run>/model_final.pth), or pass "
        f"{PARTIAL_CHECKPOINT_FLAG} to go on anyway."
    )


def check_init_weights(checkpointer, path, *, allow_partial=False):
    """After ``checkpointer`` loaded the initial weights ``path`` of a new training run: refuse
    a trained matting model (a checkpoint with ``decoder.`` weights) whose weights would not all
    be used, e.g. the checkpoint of a trimap-guided run (4 input channels) for an automatic
    model (3): training would start with those layers random. A pretrained backbone (no
    decoder) is expected to leave the decoder random; the checkpointer's summary warning says
    what was left out.

    Raises:
        CheckpointError: naming the file, how many weights and which modules, unless
            ``allow_partial`` (then the summary warning stands and training goes on).
    """
    incompatible = checkpointer.incompatible
    if not path or incompatible is None or allow_partial:
        return
    problems = _problems(incompatible)
    used = {k for k in checkpointer.model.state_dict()} - set(incompatible.missing_keys)
    skipped = {k for k, _, _ in incompatible.incorrect_shapes} | set(
        k for k in incompatible.unexpected_keys if not k.startswith("criterion.")
    )
    is_matting_model = any(k.startswith("decoder.") for k in used | skipped)
    if not (problems and is_matting_model):
        return
    raise CheckpointError(
        f"train.init_checkpoint={path} is a trained matting model of another config: "
        f"{'; '.join(problems)}. Training would start with those layers random. Start from "
        f"the config that checkpoint was trained with, or from a pretrained backbone "
        f"(tools/convert_pretrained.py), or pass {PARTIAL_CHECKPOINT_FLAG} to initialise from "
        f"the weights that fit and train the rest from scratch; nothing was trained or written."
    )
