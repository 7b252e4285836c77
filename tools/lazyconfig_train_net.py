#!/usr/bin/env python
"""Train or evaluate an alphafree_d2 matting model from a LazyConfig file.

    python tools/lazyconfig_train_net.py --config-file configs/demo_ddc.py
    python tools/lazyconfig_train_net.py --config-file configs/am2k_ddc.py --num-gpus 4
    python tools/lazyconfig_train_net.py --config-file configs/am2k_ddc.py --eval-only \
        train.init_checkpoint=output/am2k_ddc/model_final.pth

Same shape as detectron2's script: the config provides ``model``, ``dataloader.{train,test,
evaluator}``, ``optimizer``, ``lr_multiplier`` and ``train``. Schedules are in epochs
(``train.epochs``); iterations follow from the dataset size and the total batch size.
``--num-gpus N`` on a machine without GPUs starts N CPU processes (GLOO). ``--eval-only`` writes
into ``OUTPUT/eval/<checkpoint>-<dataset>/`` and refuses a checkpoint that leaves model weights
random (``--allow-partial-checkpoint`` evaluates it anyway). Options may come before or after
the overrides. Before anything is written, the config, the output folder (locked for the run)
and, with ``--resume``, the config against the run's are checked
(alphafree_d2/engine/launch.py); expected errors end with one line and exit status 2.
"""

import logging
import sys

# First: registers the plugin, and imports fvcore and detectron2's ViT without the two
# third-party deprecation notices they print (see alphafree_d2/_third_party.py).
import alphafree_d2  # noqa: F401

# isort: split
from detectron2.config import instantiate
from detectron2.evaluation import inference_on_dataset, print_csv_format
from detectron2.utils import comm

from alphafree_d2.checkpoint import MattingCheckpointer, check_init_weights, load_trained_weights
from alphafree_d2.engine import (
    build_ddp_model,
    build_hooks,
    build_trainer,
    launch_training,
    parse_training_args,
    setup,
)

logger = logging.getLogger("detectron2")


def do_test(cfg, model):
    if "evaluator" not in cfg.dataloader:
        return {}
    ret = inference_on_dataset(
        model, instantiate(cfg.dataloader.test), instantiate(cfg.dataloader.evaluator)
    )
    if comm.is_main_process():
        print_csv_format(ret)
    return ret


def do_train(args, cfg):
    model = instantiate(cfg.model)
    logger.info("Model:\n{}".format(model))
    model.to(cfg.train.device)

    cfg.optimizer.params.model = model
    optim = instantiate(cfg.optimizer)
    train_loader = instantiate(cfg.dataloader.train)

    model = build_ddp_model(model, cfg)
    trainer = build_trainer(cfg, model, train_loader, optim)
    checkpointer = MattingCheckpointer(model, cfg.train.output_dir, trainer=trainer)
    trainer.register_hooks(build_hooks(cfg, checkpointer, lambda: do_test(cfg, model)))

    resumed = args.resume and checkpointer.has_checkpoint()
    checkpointer.resume_or_load(cfg.train.init_checkpoint, resume=args.resume)
    if not resumed:  # a trained matting model of another config is refused
        check_init_weights(
            checkpointer, cfg.train.init_checkpoint, allow_partial=args.allow_partial_checkpoint
        )
    # The checkpoint stores the iteration that just finished; start at the next one.
    start_iter = trainer.iter + 1 if resumed else 0
    trainer.train(start_iter, cfg.train.max_iter)


def main(args):
    cfg = setup(args)  # config, pixel cap, schedule or eval folder, logs, evaluation pre-flight
    if args.eval_only:
        model = instantiate(cfg.model)
        model.to(cfg.train.device)
        model = build_ddp_model(model, cfg)
        load_trained_weights(
            model, cfg.train.init_checkpoint, allow_partial=args.allow_partial_checkpoint
        )
        return do_test(cfg, model)
    do_train(args, cfg)


if __name__ == "__main__":
    launch_training(main, parse_training_args())  # checks and locks, then detectron2's launch
    sys.exit(0)
