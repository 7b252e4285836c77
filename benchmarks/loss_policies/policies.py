"""The loss policies: what each trains with (MattingCriterion's losses and region, read from the
paper-scale config of its table row), its training label and its row in the paper."""

import os
from dataclasses import dataclass, field

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The config that trains each policy at the paper's scale (configs/ is the one place a policy's
# loss weights are set).
PAPER_CONFIGS = {
    "alpha_l1": "ablations/table1_alpha_l1.py",
    "known": "ablations/table4_known.py",
    "known_affinity": "ablations/table4_known_affinity.py",
    "known_dc": "ablations/table4_known_dc.py",
    "known_ddc": "am2k_ddc.py",
    "known_ddc_unknown": "ablations/table5_ddc_unknown.py",
    "known_dc_unknown": "ablations/table5_dc_unknown.py",
    "mask_l1_ddc": "ablations/table7_mask_l1.py",
    "mask_bce_ddc": "ablations/table7_mask_bce.py",
}

# name: (table row, figure column, paper row); a name without a paper config trains
# EXTRA_LOSSES[name].
ROWS = {
    "known": ("L_known", "known", "T4 r1"),
    "known_affinity": ("L_known + L_affinity", "+affinity", "T4 r2"),
    "known_dc": ("L_known + L_DC", "+DC", "T4 r3"),
    "known_ddc": ("L_known + L_DDC", "+DDC", "T4 r4, T1 r2"),
    "known_ddc_unknown": ("L_known + L_DDC (unknown band)", "+DDC unknown", "T5"),
    "known_dc_unknown": ("L_known + L_DC (unknown band)", "+DC unknown", "T5"),
    "mask_l1_ddc": ("L1 mask + L_DDC", "mask+DDC", "T7 r1"),
    "mask_bce_ddc": ("BCE mask + L_DDC", "BCE mask+DDC", "T7 r2"),
    "mask_l1": ("L1 mask", "mask", "-"),
    "alpha_l1": ("L1 alpha (fine labels)", "alpha L1", "T1 r1"),
}
EXTRA_LOSSES = {"mask_l1": {"mask_l1": 1.0}}

POLICY_NAMES = tuple(ROWS)
DEFAULT_POLICIES = (
    "known",
    "known_affinity",
    "known_dc",
    "known_ddc",
    "known_ddc_unknown",
    "mask_l1_ddc",
    "alpha_l1",
)


@dataclass(frozen=True)
class Policy:
    """A loss policy: MattingCriterion arguments, the training label, and its paper row."""

    title: str  # table row
    short: str  # figure column
    paper: str
    losses: dict = field(hash=False)
    region: str = "whole"
    label: str = "Trimap"  # "Trimap", "Mask" or "Matte"


def _criterion(name):
    """{"losses", "region"} of policy ``name``: its paper config's ``model.criterion``."""
    if name in EXTRA_LOSSES:
        return {"losses": EXTRA_LOSSES[name], "region": "whole"}
    from detectron2.config import LazyConfig

    path = os.path.join(REPO, "configs", PAPER_CONFIGS[name])
    criterion = LazyConfig.load(path).model.criterion
    return {"losses": dict(criterion.losses), "region": criterion.get("region", "whole")}


def training_label(losses):
    """ "Mask", "Matte" or "Trimap": the label the losses need (LOSSES[...].needs)."""
    from alphafree_d2.modeling.losses import LOSSES

    needs = {n for loss in losses for n in LOSSES[loss].needs}
    return "Mask" if "mask" in needs else "Matte" if "alpha" in needs else "Trimap"


def build_policies():
    """{name: Policy} for every name of :data:`POLICY_NAMES` (loads their configs)."""
    policies = {}
    for name, (title, short, paper) in ROWS.items():
        spec = _criterion(name)
        label = training_label(spec["losses"])
        policies[name] = Policy(title, short, paper, spec["losses"], spec["region"], label)
    return policies
