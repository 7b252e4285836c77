"""alphafree_d2: train image-matting models on trimaps only, as a detectron2 plugin.

``import alphafree_d2`` registers what the plugin adds to detectron2: the datasets
(``demo_*``, ``am2k_*``, ``p3m*``) in ``DatasetCatalog``/``MetadataCatalog`` (lazily: nothing is
read until a dataset is used) and the ``ViTMatte`` meta-architecture in ``META_ARCH_REGISTRY``.
"""

from . import _third_party  # noqa: F401, I001  (first: imports fvcore/detectron2 quietly)
from . import data, modeling  # noqa: F401  (register the datasets and the meta-architecture)
from .config import add_alphafree_config
from .data import MattingDatasetMapper, register_matting_dataset
from .evaluation import MattingEvaluator, matting_metrics
from .inference import MattingPredictor
from .modeling import MattingCriterion, ViTMatte, ddc_loss, known_loss

__version__ = "0.1.0"

__all__ = [
    "MattingCriterion",
    "MattingDatasetMapper",
    "MattingEvaluator",
    "MattingPredictor",
    "ViTMatte",
    "add_alphafree_config",
    "ddc_loss",
    "known_loss",
    "matting_metrics",
    "register_matting_dataset",
]
