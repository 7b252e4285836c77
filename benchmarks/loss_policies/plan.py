"""The runs of one invocation: budget, folders and the training / evaluation command of each
(policy, seed) run, as ``tools/lazyconfig_train_net.py`` overrides."""

import os
import re
import sys

from .policies import REPO, build_policies

ENTRY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_train_entry.py")
BASE_CONFIG = os.path.join(REPO, "configs", "demo_ddc.py")
TRIMAP_CONFIG = os.path.join(REPO, "configs", "demo_ddc_trimap.py")

MASK_DATASET = "loss_policies_demo_train_mask"
REAL_DATASET = "loss_policies_real"
# The folder of tools/lazyconfig_train_net.py --eval-only inside a run's folder.
REAL_EVAL = os.path.join("eval", f"model_final-{REAL_DATASET}")

# Decoder widths: "thin" is the default budget's model, "demo" keeps configs/demo_ddc.py's.
DECODERS = {
    "thin": {"conv_channels": [8, 16, 32], "fusion_channels": [32, 16, 8, 8], "head_channels": 8},
    "demo": None,
}
# --smoke: a tiny ViT (2 blocks of width 32) for a test that runs in seconds.
SMOKE_BACKBONE = {
    "embed_dim": 32,
    "depth": 2,
    "num_heads": 2,
    "window_block_indexes": [0],
    "residual_block_indexes": [1],
}


def _quote(value):
    """A path as an override value, quoted when it holds characters that Hydra's override
    grammar (which detectron2 uses) would read otherwise."""
    value = str(value)
    if re.fullmatch(r"/[A-Za-z0-9_./-]+", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _value(value):
    """An override value: lists as ``[a,b]`` (floats by repr), the rest as ``str``."""
    if isinstance(value, list):
        return "[" + ",".join(repr(v) if isinstance(v, float) else str(v) for v in value) + "]"
    return str(value)


def demo_csv(run):
    """The per-image CSV of a run's final ``demo_val`` evaluation."""
    return os.path.join(run, "inference", "demo_val_whole_image_per_image.csv")


def real_csv(run):
    """The per-image CSV of a run's ``--real-dir`` evaluation."""
    return os.path.join(run, REAL_EVAL, "inference", f"{REAL_DATASET}_whole_image_per_image.csv")


class Plan:
    """Everything the runs share, and the command of each run."""

    def __init__(self, args, num_train_images):
        self.args = args
        self.output = os.path.abspath(args.output)
        self.smoke = args.smoke
        self.batch = 2 if args.smoke else args.batch
        self.crop = 64 if args.smoke else args.crop
        self.seeds = [args.seeds[0]] if args.smoke else list(args.seeds)
        if args.smoke:
            self.iters = 2
        elif args.epochs is not None:
            self.iters = max(1, round(args.epochs * num_train_images / self.batch))
        else:
            self.iters = args.iters or 1000
        self.iters_per_epoch = num_train_images / self.batch
        self.epochs = self.iters / self.iters_per_epoch
        self.policies = build_policies()
        # (name, image_root, trimap_root, alpha_root or "-") of the folder datasets each run
        # registers (benchmarks/loss_policies/_train_entry.py --register).
        self.registrations = []

    def run_dir(self, name, seed):
        return os.path.join(self.output, "runs", name, f"seed{seed}")

    def model_overrides(self):
        decoder = DECODERS["thin" if self.smoke else self.args.decoder] or {}
        out = [f"model.decoder.{key}={_value(value)}" for key, value in decoder.items()]
        if self.smoke:
            out += [f"model.backbone.{key}={_value(v)}" for key, v in SMOKE_BACKBONE.items()]
        return out

    def criterion_overrides(self, policy):
        # Every loss is named: detectron2 merges dict overrides, and a weight of 0 switches a
        # loss off (MattingCriterion).
        from alphafree_d2.modeling.losses import LOSSES

        out = [f"model.criterion.losses.{n}={float(policy.losses.get(n, 0.0))}" for n in LOSSES]
        return out + [f"model.criterion.region={policy.region}"]

    def train_command(self, name, seed):
        policy = self.policies[name]
        milestones = [round(0.6 * self.epochs, 4), round(0.9 * self.epochs, 4)]
        dataset = MASK_DATASET if policy.label == "Mask" else "demo_train"
        augmentations = "dataloader.train.mapper.augmentations"
        overrides = [
            f"train.output_dir={_quote(self.run_dir(name, seed))}",
            f"train.seed={seed}",
            f"train.max_iter={self.iters}",
            f"train.epochs={round(self.epochs, 4)}",
            f"lr_multiplier.milestones_epochs={_value(milestones)}",
            "train.eval_period_epochs=0",
            "train.checkpointer.period_epochs=0",
            "train.log_period=20",
            f"dataloader.train.dataset.names={dataset}",
            f"dataloader.train.total_batch_size={self.batch}",
            f"{augmentations}.crop_size={self.crop}",
            f"{augmentations}.scale_range={_value(self.args.scale_range)}",
            f"{augmentations}.crop_policy={self.args.crop_policy}",
            "dataloader.test.dataset.names=demo_val",
            "dataloader.evaluator.save_predictions=True",
            *(["dataloader.train.num_workers=0"] if self.smoke else []),
            *self.model_overrides(),
            *self.criterion_overrides(policy),
            *self.args.opts,
        ]
        return self._command(["--resume"], overrides)

    def eval_command(self, name, seed):
        run = self.run_dir(name, seed)
        overrides = [
            f"train.init_checkpoint={_quote(os.path.join(run, 'model_final.pth'))}",
            f"train.output_dir={_quote(run)}",  # --eval-only writes to run/REAL_EVAL
            f"dataloader.test.dataset.names={REAL_DATASET}",
            "dataloader.evaluator.save_predictions=True",
            *self.model_overrides(),
            *self.criterion_overrides(self.policies[name]),
            *self.args.opts,
        ]
        return self._command(["--eval-only"], overrides)

    def _command(self, flags, overrides):
        cmd = [sys.executable, ENTRY]
        for registration in self.registrations:
            cmd += ["--register", *registration]
        base = TRIMAP_CONFIG if self.args.trimap_input else BASE_CONFIG
        cmd += ["--config-file", base, "--num-gpus", str(self.args.num_gpus), *flags]
        return cmd + overrides
