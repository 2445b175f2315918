"""LazyConfig training settings, the keys Detectron2's LazyConfig training scripts read (and
``boneage-lazy-train`` reads): the 2-core CPU demo's schedule."""

train = dict(
    output_dir="./output/lazy",
    init_checkpoint="",  # weights to start from ("": random initialisation)
    max_iter=1500,
    amp=dict(enabled=False),
    ddp=dict(broadcast_buffers=False, find_unused_parameters=False, fp16_compression=False),
    checkpointer=dict(period=500, max_to_keep=100),
    eval_period=500,
    log_period=20,
    device="cuda",  # falls back to the CPU when there is no GPU
    seed=-1,  # -1: a random seed, logged
)
