"""FSDP for the policy's frozen base weights (model.fsdp): a 20B Qwen-Image split over the processes.

torch's `fully_shard` (FSDP2) wraps every transformer block and then the transformer: each process keeps 1/world of
each frozen base weight and all-gathers a block's full weights just before its forward (and again for the backward's
recompute), freeing them after. The LoRA parameters are left out of the sharding (`ignored_params`): they stay
ordinary replicated fp32 tensors, so the trainer's data-parallel logic is unchanged (its one all-reduce of the LoRA
gradients per optimizer step, AdamW on every process, checkpoints and the export). What stays replicated is the
LoRA: Qwen-Image at rank 64 on the 12 targets of 60 blocks is 425 M parameters, 1.7 GB in fp32 and 6.8 GB with
gradients and AdamW state, against the 41 GB base that does not fit beside the activations.

Gathering is exact (communication, no arithmetic), so a sharded run computes what an unsharded one does: the same
samples (each sample's noise is its own, sampling.py), the same rewards, the same LoRA (tests/grpo/test_fsdp.py).

What sharding asks of the loop: every process must run the same sequence of transformer forwards, since each one
is a collective. Sampling is split evenly already (check_world); training deals the kept samples out round-robin,
so with FSDP each optimizer chunk must split evenly over the processes (check_world says so); the evaluation grids,
which the main process samples alone, are off with FSDP (prompts.num_eval = 0).
"""

from __future__ import annotations

import torch

BLOCK_LISTS = ("transformer_blocks", "single_transformer_blocks")  # Qwen-Image, Flux (double and single blocks)


def shard_policy(policy, device: torch.device, world: int) -> int:
    """Shard `policy.transformer`'s frozen weights over the `world` processes of the default process group.

    Returns the number of FSDP units (blocks + the root). A no-op on one process.
    """
    if world <= 1:
        return 0
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    transformer = policy.transformer
    mesh = init_device_mesh(device.type, (world,))
    trainable = {p for p in transformer.parameters() if p.requires_grad}
    units = 0
    for name in BLOCK_LISTS:
        for block in getattr(transformer, name, ()):
            fully_shard(block, mesh=mesh, ignored_params={p for p in block.parameters() if p in trainable})
            units += 1
    fully_shard(transformer, mesh=mesh, ignored_params=trainable)
    if torch.distributed.get_rank() == 0:
        print(f"FSDP: the transformer's frozen weights sharded over {world} processes ({units + 1} units)")
    return units + 1
