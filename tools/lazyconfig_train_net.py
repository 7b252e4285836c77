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
random (``--allow-partial-checkpoint`` evaluates it anyway).
"""

import logging

# First: registers the plugin, and imports fvcore and detectron2's ViT without the two
# third-party deprecation notices they print (see alphafree_d2/_third_party.py).
import alphafree_d2  # noqa: F401

# isort: split
from detectron2.config import LazyConfig, instantiate
from detectron2.engine import default_setup
from detectron2.evaluation import inference_on_dataset, print_csv_format
from detectron2.utils import comm
from detectron2.utils.logger import setup_logger

from alphafree_d2.checkpoint import MattingCheckpointer, load_trained_weights
from alphafree_d2.engine import (
    apply_overrides,
    argument_parser,
    build_ddp_model,
    build_hooks,
    build_trainer,
    check_init_checkpoint,
    check_output_dir,
    launch,
    limit_cpu_threads,
    resolve_schedule,
    setup_eval_only,
)
from alphafree_d2.utils import resolve_device

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

    checkpointer.resume_or_load(cfg.train.init_checkpoint, resume=args.resume)
    if args.resume and checkpointer.has_checkpoint():
        # The checkpoint stores the iteration that just finished; start at the next one.
        start_iter = trainer.iter + 1
    else:
        start_iter = 0
    trainer.train(start_iter, cfg.train.max_iter)


def main(args):
    cfg = LazyConfig.load(args.config_file)
    cfg = apply_overrides(cfg, args.opts)  # LazyConfig.apply_overrides, checked
    cfg.train.device = str(resolve_device(cfg.train.device))
    if args.eval_only:
        setup_eval_only(cfg)  # its own output folder
    else:
        check_output_dir(cfg.train.output_dir, args.resume)
        check_init_checkpoint(cfg, will_resume=args.resume)
        resolve_schedule(cfg)
    default_setup(cfg, args)
    # The plugin's own messages (the evaluator's line with every metric, SAD-T and MSE-T
    # included, which detectron2's copypaste line leaves out) go to the same console and log.txt.
    setup_logger(cfg.train.output_dir, distributed_rank=comm.get_rank(), name="alphafree_d2")
    limit_cpu_threads(cfg.train.device)

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
    args = argument_parser().parse_args()
    launch(
        main,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )
