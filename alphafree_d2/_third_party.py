"""Third-party modules whose import prints deprecation notices a user cannot act on.

fvcore's ``fvcore.nn`` and detectron2's ``modeling`` package (``box_regression``) call
``torch.jit.script`` at import, and detectron2's ViT blocks import ``timm.models.layers``
(lazily, when the first block is built); both raise a ``FutureWarning`` on the torch/timm
versions this project pins. They are imported here once, first thing on ``import alphafree_d2``,
with only these two notices (matched by message and by the module that raises them) silenced.
The global warning filters are restored afterwards, so a user's own code still sees every
warning. (A program that imports detectron2 before alphafree_d2 sees the notices once.)
"""

import warnings

NOTICES = (
    (r"`torch\.jit\.script` is deprecated", r"torch\.jit\._script"),
    (r"Importing from timm\.models\.layers is deprecated", r"timm\.models\.layers"),
)

with warnings.catch_warnings():
    for _message, _module in NOTICES:
        warnings.filterwarnings("ignore", _message, FutureWarning, _module)
    import timm.models.layers  # noqa: F401

    import detectron2.modeling  # noqa: F401
    import fvcore.nn  # noqa: F401
