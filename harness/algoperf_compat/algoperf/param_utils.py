"""`algoperf.param_utils` for PyTorch submission files: parameter shapes and types by name.

`pytorch_param_types` guesses from the names alone, as AlgoPerf's does (its signature takes the
shapes); the types the harness hands a file in `current_params_types` come from the modules that
own the parameters instead (submissions/algoperf.py), which is exact for the harness's models.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from harness.algoperf_compat.algoperf.spec import ParameterType, ShapeTuple


def pytorch_param_shapes(model: nn.Module) -> dict[str, ShapeTuple]:
    return {name: ShapeTuple(tuple(p.shape)) for name, p in model.named_parameters()}


def _attention_type(name: str) -> ParameterType:
    leaf = name.rsplit(".", 2)[-2] if name.count(".") else name
    if name.endswith("bias"):
        return ParameterType.ATTENTION_BIAS
    if "in_proj" in name or leaf == "qkv":
        return ParameterType.ATTENTION_QKV
    if "kv_proj" in name or leaf == "kv":
        return ParameterType.ATTENTION_KV
    if "q_proj" in name or "query" in name or leaf == "q":
        return ParameterType.ATTENTION_Q
    if "k_proj" in name or "key" in name or leaf == "k":
        return ParameterType.ATTENTION_K
    if "v_proj" in name or "value" in name or leaf == "v":
        return ParameterType.ATTENTION_V
    if "out" in name or leaf == "proj":
        return ParameterType.ATTENTION_OUT
    return ParameterType.WEIGHT


def pytorch_param_types(param_shapes: Mapping[str, Any]) -> dict[str, ParameterType]:
    """The type of every parameter, from the words in its name (bn, norm, conv, embed, attn)."""
    types: dict[str, ParameterType] = {}
    for name in param_shapes:
        scale = name.endswith(("weight", "scale"))
        if "bn" in name or "batchnorm" in name or "batch_norm" in name:
            types[name] = ParameterType.BATCH_NORM_SCALE if scale else ParameterType.BATCH_NORM_BIAS
        elif "norm" in name or "ln" in name:
            types[name] = ParameterType.LAYER_NORM_SCALE if scale else ParameterType.LAYER_NORM_BIAS
        elif "conv" in name:
            types[name] = ParameterType.BIAS if name.endswith("bias") else ParameterType.CONV_WEIGHT
        elif "embed" in name and name.endswith("weight"):
            types[name] = ParameterType.EMBEDDING
        elif "attn" in name or "attention" in name:
            types[name] = _attention_type(name)
        elif name.endswith("bias"):
            types[name] = ParameterType.BIAS
        else:
            types[name] = ParameterType.WEIGHT
    return types
