"""BLOOM on megatron-core: the layer ``ModuleSpec``, the embedding, and ``build_model``.

A BLOOM block (Le Scao et al. 2022, section 3.2) is a pre-LayerNorm GPT block with biases in
every linear layer, tanh-approximated GeLU and ALiBi attention; the word embedding is followed
by a LayerNorm ("embedding LayerNorm", first pipeline stage only); there are no position
embeddings; the LM head is the word embedding, tied across the first and last pipeline stages
by megatron-core (``share_embeddings_and_output_weights``).

Only local megatron-core modules are used (no Transformer Engine), so the same spec runs on CPU.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
from megatron.core import tensor_parallel
from megatron.core.fusions.fused_bias_dropout import get_bias_dropout_add
from megatron.core.models.backends import LNImpl
from megatron.core.models.gpt import GPTModel
from megatron.core.process_groups_config import ProcessGroupCollection
from megatron.core.transformer.attention import SelfAttention, SelfAttentionSubmodules
from megatron.core.transformer.enums import AttnMaskType
from megatron.core.transformer.identity_op import IdentityOp
from megatron.core.transformer.mlp import MLP, MLPSubmodules
from megatron.core.transformer.module import MegatronModule
from megatron.core.transformer.spec_utils import ModuleSpec
from megatron.core.transformer.transformer_config import TransformerConfig
from megatron.core.transformer.transformer_layer import (
    TransformerLayer,
    TransformerLayerSubmodules,
)
from torch import Tensor

from bloomkit.pretraining.model.alibi import AlibiDotProductAttention, AlibiSDPAttention
from bloomkit.pretraining.model.config import BloomModelConfig
from bloomkit.pretraining.parallel import ParallelConfig

CORE_ATTENTION = {"local": AlibiDotProductAttention, "sdpa": AlibiSDPAttention}


def bloom_layer_spec(attention_backend: str = "local") -> ModuleSpec:
    """One BLOOM transformer layer: LN → ALiBi self-attention → +res → LN → MLP → +res."""
    return ModuleSpec(
        module=TransformerLayer,
        submodules=TransformerLayerSubmodules(
            input_layernorm=LNImpl,
            self_attention=ModuleSpec(
                module=SelfAttention,
                params={"attn_mask_type": AttnMaskType.causal},
                submodules=SelfAttentionSubmodules(
                    linear_qkv=tensor_parallel.ColumnParallelLinear,
                    core_attention=CORE_ATTENTION[attention_backend],
                    linear_proj=tensor_parallel.RowParallelLinear,
                    q_layernorm=IdentityOp,
                    k_layernorm=IdentityOp,
                ),
            ),
            self_attn_bda=get_bias_dropout_add,
            pre_mlp_layernorm=LNImpl,
            mlp=ModuleSpec(
                module=MLP,
                submodules=MLPSubmodules(
                    linear_fc1=tensor_parallel.ColumnParallelLinear,
                    linear_fc2=tensor_parallel.RowParallelLinear,
                ),
            ),
            mlp_bda=get_bias_dropout_add,
        ),
    )


def transformer_config(
    model: BloomModelConfig, parallel: ParallelConfig, *, bf16: bool = False
) -> TransformerConfig:
    """megatron-core's ``TransformerConfig`` for BLOOM at this parallel layout and precision."""
    cuda = torch.cuda.is_available()
    dtype = torch.bfloat16 if bf16 else torch.float32
    return TransformerConfig(
        num_layers=model.num_layers,
        hidden_size=model.hidden_size,
        num_attention_heads=model.num_attention_heads,
        ffn_hidden_size=model.ffn_size,
        tensor_model_parallel_size=parallel.tensor_parallel,
        pipeline_model_parallel_size=parallel.pipeline_parallel,
        sequence_parallel=parallel.sequence_parallel,
        add_bias_linear=True,
        add_qkv_bias=True,
        gated_linear_unit=False,
        activation_func=partial(torch.nn.functional.gelu, approximate="tanh"),
        normalization="LayerNorm",
        layernorm_epsilon=model.layernorm_epsilon,
        hidden_dropout=model.hidden_dropout,
        attention_dropout=model.attention_dropout,
        init_method_std=model.init_method_std,
        apply_residual_connection_post_layernorm=False,
        bias_activation_fusion=False,
        bias_dropout_fusion=False,
        masked_softmax_fusion=False,
        persist_layer_norm=False,
        gradient_accumulation_fusion=False,
        apply_rope_fusion=False,
        params_dtype=dtype,
        pipeline_dtype=dtype,
        bf16=bf16,
        use_cpu_initialization=not cuda,
        attention_softmax_in_fp32=True,
        batch_p2p_comm=cuda,  # gloo has no batched isend/irecv: CPU sends one by one
        **_recompute(model),
    )


def _recompute(model: BloomModelConfig) -> dict[str, Any]:
    """megatron-core's recomputation fields for ``model.recompute``."""
    if model.recompute == "full":
        return {"recompute_granularity": "full", "recompute_method": "uniform",
                "recompute_num_layers": model.recompute_num_layers}  # fmt: skip
    if model.recompute == "selective":
        return {"recompute_granularity": "selective", "recompute_modules": ["core_attn"]}
    return {}


class BloomEmbedding(MegatronModule):
    """Word embedding (vocab-parallel) → embedding LayerNorm → ``[s, b, h]`` → dropout.

    Takes over the ``VocabParallelEmbedding`` that ``GPTModel`` built, so its name
    (``embedding.word_embeddings.weight``) and its tying to the LM head stay megatron's.
    """

    def __init__(self, config: TransformerConfig, word_embeddings: torch.nn.Module):
        super().__init__(config=config)
        self.word_embeddings = word_embeddings
        self.word_embeddings_layernorm = LNImpl(
            config=config, hidden_size=config.hidden_size, eps=config.layernorm_epsilon
        )
        self.embedding_dropout = torch.nn.Dropout(config.hidden_dropout)

    def forward(
        self, input_ids: Tensor, position_ids: Tensor | None = None, tokentype_ids: None = None
    ) -> Tensor:
        del position_ids, tokentype_ids  # ALiBi: no position embeddings
        embeddings = self.word_embeddings_layernorm(self.word_embeddings(input_ids))
        embeddings = embeddings.transpose(0, 1).contiguous()  # [b, s, h] -> [s, b, h]
        if self.config.sequence_parallel:
            embeddings = tensor_parallel.scatter_to_sequence_parallel_region(embeddings)
            with tensor_parallel.get_cuda_rng_tracker().fork():
                return self.embedding_dropout(embeddings)
        return self.embedding_dropout(embeddings)


class BloomModel(GPTModel):
    """megatron-core ``GPTModel`` with the BLOOM layer spec and the embedding LayerNorm."""

    def __init__(
        self,
        config: TransformerConfig,
        model: BloomModelConfig,
        *,
        pre_process: bool = True,
        post_process: bool = True,
        parallel_output: bool = True,
        pg_collection: ProcessGroupCollection | None = None,
    ):
        tp = config.tensor_model_parallel_size
        super().__init__(
            config=config,
            transformer_layer_spec=bloom_layer_spec(model.attention_backend),
            vocab_size=model.padded_vocab_size(tp),
            max_sequence_length=model.seq_length,
            pre_process=pre_process,
            post_process=post_process,
            parallel_output=parallel_output,
            share_embeddings_and_output_weights=True,
            position_embedding_type="none",
            scatter_embedding_sequence_parallel=False,
            pg_collection=pg_collection,
        )
        if pre_process:
            self.embedding = BloomEmbedding(config, self.embedding.word_embeddings)


def build_model(
    model: BloomModelConfig,
    parallel: ParallelConfig,
    *,
    bf16: bool = False,
    parallel_output: bool = True,
) -> BloomModel:
    """This rank's pipeline stage of BLOOM (process groups must exist: ``init_parallel``)."""
    from megatron.core import parallel_state

    if model.num_attention_heads % parallel.tensor_parallel:
        raise ValueError(
            f"num_attention_heads {model.num_attention_heads} is not divisible by "
            f"tensor_parallel {parallel.tensor_parallel}"
        )
    if model.num_layers % parallel.pipeline_parallel:
        raise ValueError(
            f"num_layers {model.num_layers} is not divisible by pipeline_parallel "
            f"{parallel.pipeline_parallel}"
        )
    config = transformer_config(model, parallel, bf16=bf16)
    net = BloomModel(
        config,
        model,
        pre_process=parallel_state.is_pipeline_first_stage(),
        post_process=parallel_state.is_pipeline_last_stage(),
        parallel_output=parallel_output,
    )
    if torch.cuda.is_available():
        net.cuda(torch.cuda.current_device())
    return net
