"""The models of ``tools/demo_app.py``: loaded from LazyConfig files and checkpoints, and warmed
up so that the first photo's times are the models'."""

import logging
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..checkpoint.matting_checkpointer import CheckpointError
from ..inference.foreground import estimate_foreground
from .service import DemoModel
from .trimaps import closed_form_alpha

__all__ = ["load_demo_models", "warm_up"]

logger = logging.getLogger(__name__)


def load_demo_models(
    config_file: str,
    opts: Sequence[str] = (),
    *,
    compare: Optional[Tuple[str, str]] = None,
    device="auto",
    policy=None,
) -> List[DemoModel]:
    """ "model", or "A" (``config_file`` with the overrides ``opts``) and "B" (``compare`` =
    (config file, checkpoint)), as :class:`DemoModel` s around
    :class:`~alphafree_d2.inference.MattingPredictor` s on ``device`` with the high-resolution
    ``policy``. Automatic and trimap-guided models may be mixed.

    Raises:
        ConfigError: a missing config file, or an override that does not apply.
        CheckpointError: a checkpoint that cannot be used, with the model named.
    """
    from ..engine import load_config
    from ..inference.predictor import MattingPredictor

    specs = [("model", config_file, list(opts), None)]
    if compare:
        other_config, checkpoint = compare
        specs = [("A", config_file, list(opts), None), ("B", other_config, [], checkpoint)]
    models = []
    for name, path, overrides, checkpoint in specs:
        cfg = load_config(path, overrides)
        try:
            predictor = MattingPredictor(cfg, checkpoint, device=device, policy=policy)
        except CheckpointError as e:
            which = f"model {name}" if compare else "the model"
            raise CheckpointError(f"{which} ({path}): {e}") from e
        checkpoint = checkpoint if checkpoint is not None else cfg.train.init_checkpoint
        kind = "trimap-guided" if predictor.trimap_input else "automatic"
        models.append(DemoModel(name, predictor, f"{checkpoint} ({path}, {kind})"))
    return models


def warm_up(models: Sequence[DemoModel]) -> None:
    """Run everything once on a small image (each model, with a trimap when it is
    trimap-guided; the foreground estimation; closed-form matting when a model is
    trimap-guided), so that the first photo's times are the models': pymatting compiles (or
    loads from its cache) its solvers on first use. A model that fails here is logged, not
    raised: the page reports it on every photo."""
    image = np.full((64, 64, 3), 128, dtype=np.uint8)
    image[:, 32:] = 200
    trimap = np.full((64, 64), 128, dtype=np.uint8)
    trimap[:, :16] = 0
    trimap[:, 48:] = 255
    alpha = np.full(image.shape[:2], 0.5, dtype=np.float32)
    for model in models:
        args = (image, trimap) if model.trimap_input else (image,)
        try:
            alpha = np.asarray(model.predictor(*args), dtype=np.float32)
        except Exception as e:  # the page reports it on each photo; serve the other models
            logger.warning(
                "model %s failed on the warm-up image: %s: %s", model.name, type(e).__name__, e
            )
    estimate_foreground(image, np.clip(np.nan_to_num(alpha), 0.0, 1.0))
    if any(model.trimap_input for model in models):  # the page offers the reference then
        closed_form_alpha(image, trimap)
