"""The paper's loss-policy ablation at small scale: one small model trained with each policy.

Policies (paper: "Training Matting Models without Alpha Labels", Sec. 3, Tables 1, 4, 5, 7):

    known               L_known                                   Table 4 row 1
    known_affinity      L_known + 10 L_affinity                   Table 4 row 2 (weight: ours)
    known_dc            L_known + 10 L_DC                         Table 4 row 3
    known_ddc           L_known + 10 L_DDC (the paper's method)   Table 4 row 4, Table 1 row 2
    known_ddc_unknown   L_known + 10 L_DDC on the unknown band    Table 5 "DDC unknown"
    mask_l1_ddc         L1 on a coarse mask + 10 L_DDC            Table 7 "Mask l1"
    alpha_l1            L1 on the ground-truth alpha (fine labels) Table 1 row 1
    (optional: known_dc_unknown, mask_bce_ddc, mask_l1 = mask L1 alone; see --policies)

Each policy trains the same model on ``demo_train`` for the same iterations and seeds through
the product's own path: ``tools/lazyconfig_train_net.py`` (its ``main``, via
``benchmarks/loss_policies/_train_entry.py``, which only registers the extra folder datasets
first) on ``configs/demo_ddc.py`` with command-line overrides, one subprocess per run; the
training script's final evaluation (MattingEvaluator, whole-image protocol) gives the ``demo_val``
numbers. With ``--real-dir DIR`` (``DIR/{image,alpha,trimap}/``, e.g.
``../shared/data/alphamatting-dev``) each model is also evaluated there with the script's
``--eval-only`` (the model's own inference on the full-resolution photo; for images under 1 MP,
as these are, it is exactly what ``MattingPredictor``'s default high-resolution policy runs).

    python -m benchmarks.loss_policies               # default, CPU: 22.5 min measured (2 cores)
    python -m benchmarks.loss_policies --real-dir ../shared/data/alphamatting-dev
    python -m benchmarks.loss_policies --policies known known_ddc --seeds 0 1 2 --iters 3000
    python -m benchmarks.loss_policies --num-gpus 4 --iters 6000 --batch 16 --crop 256 \
        --decoder demo --scale-range 0.5 2.0 --output output/loss_policies_gpu
    python -m benchmarks.loss_policies --crop-policy uniform --output output/loss_policies_uniform
    python -m benchmarks.loss_policies --dry-run        # print the commands, run nothing
    python -m benchmarks.loss_policies --trimap-input --policies known known_ddc alpha_l1 \
        --real-dir ../shared/data/alphamatting-dev --output output/loss_policies_trimap

With ``--trimap-input`` the same policies train the trimap-guided model
(``configs/demo_ddc_trimap.py``: image + trimap in, the trimap also the training label; at
evaluation the evaluation trimap is the input and known regions are copied from it), and each
table gets reference rows computed in the same run with classical trimap-based matting on the
same images and trimaps (pymatting's closed-form and KNN matting, ``benchmarks/closed_form.py``);
the figures then show image | trimap | closed-form | policies | ground truth.

Default budget (2 CPU cores shared with others; measured, see docs/results.md): the demo model with a
thinner decoder (``--decoder thin``: conv stream 8/16/32, fusion 32/16/8/8 channels instead of
16/32/64 and 64/32/16/16; the ViT is the demo's, 4 blocks of width 96), 128 x 128 crops, batch 4,
random scale in [0.5, 1] (instead of [0.5, 2]: at 128 px crops of 256-384 px images, the wider
range left the known-only model at the all-background solution for most of the budget),
1000 iterations (62.5 epochs of the 64 images) with the paper's lr steps at 60 % and 90 %,
seeds 0 and 1, one torch thread per run, two runs at a time (--jobs). From scratch, the models
first collapse to the all-background solution (the L1 median of a mostly background label) and
need several hundred iterations to leave it; the results file states the known-only model's
final training loss next to that trivial level, and the tables carry an "all background"
reference row.

Outputs under ``--output`` (default ``output/loss_policies``): ``results.md`` (the Markdown
tables: mean ± sample standard deviation over seeds, the paper's column order, then SAD-K =
SAD - SAD-T, the error where the evaluation trimap is known), ``results.csv`` (every policy,
seed and dataset), ``figure_demo_val.png`` / ``figure_real.png`` (image | one column per policy |
ground truth, the first seed's models, with a magnified detail), ``runs/<policy>/seed<S>/``
(each run's detectron2 output: checkpoints, log, metrics.json, per-image CSVs and prediction
PNGs), ``labels/demo_train_mask/`` (the mask labels). Completed runs with identical settings are
reused by a second invocation; ``--overwrite`` retrains them.

Modules: :mod:`.policies` (what each policy trains with), :mod:`.plan` (the runs' commands),
:mod:`.run` (running them, reusing finished runs), :mod:`.tables`, :mod:`.figure` and
:mod:`.report` (``results.md``, ``results.csv``, figures), :mod:`.cli` (the command line).
"""
