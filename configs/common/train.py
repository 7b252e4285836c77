# What tools/lazyconfig_train_net.py needs besides model, data and optimizer. Periods are in
# epochs; resolve_schedule turns them into iterations (max_iter, eval_period,
# checkpointer.period) from the dataset size and dataloader.train.total_batch_size.
train = dict(
    output_dir="./output",
    init_checkpoint="",
    epochs=100,
    max_iter=None,  # None: epochs x images / total batch; set it to force a number of iterations
    iters_per_epoch=None,  # filled in
    eval_period_epochs=10,  # 0: evaluate only at the end
    eval_period=None,  # filled in
    checkpointer=dict(period_epochs=10, period=None, max_to_keep=3),
    log_period=20,
    # AMP on CUDA (float16 with a gradient scaler, or bfloat16); on CPU only bfloat16 applies.
    amp=dict(enabled=False, dtype="float16"),
    ddp=dict(broadcast_buffers=False, find_unused_parameters=False, fp16_compression=False),
    device="auto",  # "cuda" when a GPU is visible, else "cpu"
    seed=42,
)
