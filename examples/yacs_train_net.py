#!/usr/bin/env python
"""Train and evaluate a matting model from a yacs config with detectron2's ``DefaultTrainer``:
how a yacs-based detectron2 project (Mask2Former's ``train_net.py`` and its relatives) plugs in
alphafree_d2. The LazyConfig script ``tools/lazyconfig_train_net.py`` is the primary interface.

    python examples/yacs_train_net.py --config-file examples/demo_ddc.yaml MODEL.DEVICE cpu
    python examples/yacs_train_net.py --config-file ... --eval-only MODEL.WEIGHTS model.pth

What a project adds to its own ``train_net.py``: ``add_alphafree_config(cfg)`` in ``setup``, and
the matting mapper and evaluator in the trainer's loader/evaluator hooks below.
"""

import os

import torch

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import get_cfg
from detectron2.data import build_detection_test_loader, build_detection_train_loader
from detectron2.engine import DefaultTrainer, default_argument_parser, default_setup, launch
from detectron2.solver import get_default_optimizer_params
from detectron2.solver.build import maybe_add_gradient_clipping

from alphafree_d2 import MattingDatasetMapper, MattingEvaluator, add_alphafree_config


class Trainer(DefaultTrainer):
    """``DefaultTrainer`` with the matting mapper, the matting evaluator and AdamW."""

    @classmethod
    def build_train_loader(cls, cfg):
        return build_detection_train_loader(cfg, mapper=MattingDatasetMapper(cfg, is_train=True))

    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        mapper = MattingDatasetMapper(cfg, is_train=False)
        return build_detection_test_loader(cfg, dataset_name, mapper=mapper)

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        if output_folder is None:
            output_folder = os.path.join(cfg.OUTPUT_DIR, "inference")
        return MattingEvaluator(dataset_name, output_dir=output_folder)

    @classmethod
    def build_optimizer(cls, cfg, model):
        # AdamW as the LazyConfig recipe (configs/common/optim.py), no decay on norms.
        params = get_default_optimizer_params(
            model, base_lr=cfg.SOLVER.BASE_LR, weight_decay_norm=0.0
        )
        optimizer = maybe_add_gradient_clipping(cfg, torch.optim.AdamW)
        return optimizer(params, lr=cfg.SOLVER.BASE_LR, weight_decay=cfg.SOLVER.WEIGHT_DECAY)


def setup(args):
    cfg = get_cfg()
    add_alphafree_config(cfg)
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    cfg.freeze()
    default_setup(cfg, args)
    return cfg


def main(args):
    cfg = setup(args)
    if args.eval_only:
        model = Trainer.build_model(cfg)
        DetectionCheckpointer(model, save_dir=cfg.OUTPUT_DIR).resume_or_load(
            cfg.MODEL.WEIGHTS, resume=args.resume
        )
        return Trainer.test(cfg, model)
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    return trainer.train()


if __name__ == "__main__":
    args = default_argument_parser().parse_args()
    print("Command Line Args:", args)
    launch(
        main,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )
