"""BLOOM on megatron-core: configs and presets, ALiBi attention, the layer spec, ``build_model``."""

from bloomkit.pretraining.model.config import PRESETS, BloomModelConfig, bloom_config

__all__ = ["PRESETS", "BloomModelConfig", "bloom_config"]
