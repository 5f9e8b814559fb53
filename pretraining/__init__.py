"""pretraining: the BLOOM architecture on megatron-core, 3D-parallel training, checkpoints."""
