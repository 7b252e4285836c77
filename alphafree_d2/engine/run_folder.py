"""The output folder of a training run (or of ``--eval-only``), guarded before anything is
written into it; :func:`~alphafree_d2.engine.launch.launch_training` runs these checks in the
process that starts the run.

- :class:`RunLock`: an exclusive lock (``fcntl.flock`` on ``<folder>/.run.lock``, which holds the
  pid and host of its holder) for the run's whole life. The kernel releases it when the process
  ends, however it ends (a kill included). A second run on the folder is refused, naming the
  folder and the first run's pid. The process that launches the run holds it; the processes
  that ``launch`` starts (``--num-gpus N``) and the other machines run under it.
- :func:`check_output_dir`: a new run (no ``--resume``) refuses a folder that holds another run.
- :func:`check_resume_config`: ``--resume`` compares the config with the run's ``config.yaml``
  (the one detectron2's ``default_setup`` wrote): differences in the model are refused, naming
  the keys (the checkpoints hold the run's model); differences in training settings only (loss
  weights, crop size, learning rate, schedule, ...) are allowed with a warning that lists them,
  and the run's previous ``config.yaml`` is kept as ``config-<n>.yaml`` (1 the first run's)
  before the new one replaces it.
"""

import inspect
import os
import socket
import sys
import tempfile

import yaml

from detectron2.config import LazyConfig
from detectron2.utils.registry import locate

from ..utils.file_io import atomic_write

try:
    import fcntl
except ImportError:  # Windows: no lock
    fcntl = None

__all__ = [
    "LOCK_FILE",
    "OutputFolderError",
    "RunLock",
    "check_output_dir",
    "config_changes",
    "check_resume_config",
]

LOCK_FILE = ".run.lock"

# Keys that change without changing the run: filled in from others (the schedule in iterations,
# from epochs) or spelled differently for the same folder.
_DERIVED = ("train.output_dir", "train.iters_per_epoch", "train.eval_period",
            "train.checkpointer.period")  # fmt: skip
# Settings under ``model`` that change how it trains, not the weights it has.
_TRAINING_ONLY_MODEL = ("model.criterion", "model.backbone.drop_path_rate",
                        "model.backbone.use_act_checkpoint")  # fmt: skip


class OutputFolderError(RuntimeError):
    """A run must not use this output folder: another run holds it, it holds another run, or
    ``--resume`` brings another model's config."""


class RunLock:
    """Exclusive lock on an output folder (module docstring); a context manager. A run that
    stops with an exception inside the ``with`` (a refusal) leaves the folder as it found it:
    the lock file's previous content and time restored, or the file and the folders that were
    created for it removed.

    Args:
        folder: the run's output folder (created if missing).
    """

    def __init__(self, folder):
        self.folder = folder
        self.path = os.path.join(folder, LOCK_FILE)
        self._fd = None
        self._created = []  # folders made for the lock, innermost first
        self._previous = None  # (content, atime_ns, mtime_ns) of an existing lock file

    def acquire(self):
        if fcntl is None:
            return self
        parent = os.path.abspath(self.folder)
        while not os.path.exists(parent):
            self._created.append(parent)
            parent = os.path.dirname(parent)
        try:
            os.makedirs(self.folder, exist_ok=True)
            existed = os.path.exists(self.path)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise OutputFolderError(
                f"output folder {self.folder} cannot be created or written ({e}); choose another "
                "train.output_dir=..."
            ) from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
            os.close(fd)
            raise OutputFolderError(
                f"output folder {self.folder} is in use by another run "
                f"({holder or 'its process id is not written yet'}; lock file {self.path}). "
                "Wait for it to end, or choose another train.output_dir=...; nothing was written."
            ) from None
        if existed:
            st = os.fstat(fd)
            self._previous = (os.pread(fd, 1 << 16, 0), st.st_atime_ns, st.st_mtime_ns)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self, refused=False):
        """Release the lock; ``refused``: leave the folder as :meth:`acquire` found it."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        if refused and self._previous is not None:
            content, atime, mtime = self._previous
            os.ftruncate(fd, 0)
            os.pwrite(fd, content, 0)
            os.utime(fd, ns=(atime, mtime))
        elif refused:
            os.remove(self.path)  # ours: removed while still locked
        os.close(fd)
        if refused:
            for folder in self._created:
                try:
                    os.rmdir(folder)
                except OSError:  # something else was written there: keep it
                    break

    def __enter__(self):
        return self.acquire()

    def __exit__(self, kind, value, tb):
        self.release(refused=kind is not None)


def _has_records(output_dir):
    metrics = os.path.join(output_dir, "metrics.json")
    return os.path.isfile(metrics) and os.path.getsize(metrics) > 0


def check_output_dir(output_dir, resume):
    """Refuse to start a new run (no ``resume``) in a folder that holds another run's
    checkpoints, or the records (non-empty ``metrics.json``) of a run that stopped before its
    first checkpoint: a new run would append to them and mix two runs' curves. With ``resume``,
    a folder without checkpoints restarts at iteration 0 and its old ``metrics.json`` records
    are dropped (:class:`~alphafree_d2.engine.hooks.DropRedoneRecords`).

    Raises:
        OutputFolderError: saying how to resume or where to start a new run.
    """
    if resume:
        return
    last = os.path.join(output_dir, "last_checkpoint")
    if os.path.exists(last):
        with open(last) as f:
            name = f.read().strip()
        raise OutputFolderError(
            f"{output_dir} already holds the checkpoints of a run (last: {name}). Pass --resume "
            f"to continue it, or choose another train.output_dir=... to start a new run; "
            f"nothing was overwritten."
        )
    if _has_records(output_dir):
        raise OutputFolderError(
            f"{output_dir} holds the records (metrics.json, TensorBoard events) of a run that "
            f"stopped before its first checkpoint. Pass --resume to start that run again in this "
            f"folder from iteration 0 (its metrics.json records are dropped), or choose another "
            f"train.output_dir=... to start a new run; nothing was changed."
        )


class _YamlLoader(yaml.SafeLoader):
    """Reads detectron2's config.yaml without constructing Python objects: a ``!!python/...``
    value (e.g. ``functools.partial(nn.LayerNorm, eps=1e-6)``) becomes comparable text."""


def _python_tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return f"!!python/{suffix} {value!r}"


_YamlLoader.add_multi_constructor("tag:yaml.org,2002:python/", _python_tag)


def _read_config_yaml(path):
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=_YamlLoader) or {}


def _as_saved(cfg):
    """``cfg`` as detectron2 writes it into config.yaml, read back as plain containers."""
    with tempfile.TemporaryDirectory(prefix="alphafree_d2_config_") as tmp:
        path = os.path.join(tmp, "config.yaml")
        LazyConfig.save(cfg, path)
        return _read_config_yaml(path)


_SIMPLE = (type(None), bool, int, float, str)


def _target_name(target):
    """The importable name of a LazyCall target, however config.yaml spelled it."""
    try:
        obj = locate(target) if isinstance(target, str) else target
        return f"{obj.__module__}.{obj.__qualname__}"
    except Exception:  # not importable (moved or removed): compare the text
        return str(target)


def _with_defaults(tree):
    """A copy of ``tree`` where each LazyCall node also has the arguments it leaves to its
    target's defaults (plain values only), so that ``x=16`` and an absent ``x`` with default
    16 compare equal."""
    if isinstance(tree, list):
        return [_with_defaults(v) for v in tree]
    if not isinstance(tree, dict):
        return tree
    out = {k: _with_defaults(v) for k, v in tree.items()}
    if "_target_" in out:
        try:
            target = locate(out["_target_"]) if isinstance(out["_target_"], str) else None
            params = inspect.signature(target).parameters.values() if target else []
        except Exception:
            params = []
        for p in params:
            default = p.default
            if isinstance(default, tuple):
                default = list(default)
            plain = isinstance(default, _SIMPLE) or (
                isinstance(default, list) and all(isinstance(v, _SIMPLE) for v in default)
            )
            if p.name not in out and p.default is not p.empty and plain:
                out[p.name] = default
        out["_target_"] = _target_name(out["_target_"])
    return out


def _flatten(tree, prefix=""):
    if isinstance(tree, dict) and tree:
        for key, value in tree.items():
            yield from _flatten(value, f"{prefix}{key}.")
    else:
        yield prefix[:-1], tree


_ABSENT = "(not set)"


def config_changes(old, new):
    """Differences between two configs as (model changes, training changes), each a list of
    (key, old value, new value) sorted by key; values absent on one side are ``"(not set)"``.

    Args:
        old: the run's config as read from its ``config.yaml`` (plain containers).
        new: the config of this command (a LazyConfig), after the train script's own changes
            (``train.device`` resolved).

    Keys filled in from others (the iteration schedule, when ``train.max_iter`` is None in
    ``new``) and ``train.output_dir`` are not compared.
    """
    old_flat = dict(_flatten(_with_defaults(old)))
    new_flat = dict(_flatten(_with_defaults(_as_saved(new))))
    ignored = set(_DERIVED)
    if new_flat.get("train.max_iter") is None:
        ignored.add("train.max_iter")  # derived from train.epochs, which is compared
    model, training = [], []
    for key in sorted(set(old_flat) | set(new_flat)):
        a, b = old_flat.get(key, _ABSENT), new_flat.get(key, _ABSENT)
        if key in ignored or a == b:
            continue
        under_model = key == "model" or key.startswith("model.")
        training_only = any(key == p or key.startswith(p + ".") for p in _TRAINING_ONLY_MODEL)
        (model if under_model and not training_only else training).append((key, a, b))
    return model, training


def _listing(changes):
    return "; ".join(f"{key}: {a!r} -> {b!r}" for key, a, b in changes)


def check_resume_config(cfg, output_dir, warn=None):
    """Compare ``cfg`` with ``<output_dir>/config.yaml`` before ``--resume`` writes anything
    (module docstring). Keeps the previous config.yaml as ``config-<n>.yaml`` when they differ.

    Args:
        warn: called with the warning about training changes (default: print to stderr).

    Returns:
        the training changes, [(key, old, new)], or None when the folder has no config.yaml.

    Raises:
        OutputFolderError: the model differs, naming the keys.
    """
    path = os.path.join(output_dir, "config.yaml")
    if not os.path.isfile(path):
        return None
    model, training = config_changes(_read_config_yaml(path), cfg)
    if model:
        raise OutputFolderError(
            f"--resume: the config differs from the run's {path} in the model: "
            f"{_listing(model)}. The checkpoints in {output_dir} hold that config's model. "
            f"Resume with the run's config (--config-file {path}), or start a new run in "
            "another folder (train.output_dir=...); nothing was written."
        )
    if training:
        kept = _keep_previous_config(output_dir)
        message = (
            f"--resume with training settings that differ from the run's config (kept as "
            f"{kept}): {_listing(training)}. Training goes on from the last checkpoint with "
            "the new settings."
        )
        (warn or (lambda m: print(f"warning: {m}", file=sys.stderr, flush=True)))(message)
    return training


def _keep_previous_config(output_dir):
    """Copy config.yaml to the next free config-<n>.yaml; returns its path."""
    taken = {
        int(name[7:-5])
        for name in os.listdir(output_dir)
        if name.startswith("config-") and name.endswith(".yaml") and name[7:-5].isdigit()
    }
    target = os.path.join(output_dir, f"config-{max(taken, default=0) + 1}.yaml")
    with open(os.path.join(output_dir, "config.yaml"), "rb") as f:
        data = f.read()
    with atomic_write(target) as f:
        f.write(data)
    return target
