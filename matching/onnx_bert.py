"""Build the ONNX graph of a BERT encoder straight from its weights, without torch.

A BERT-architecture sentence model (multilingual-e5-small, all-MiniLM-L6-v2 ...) is a fixed stack: embeddings +
LayerNorm, then per layer self-attention, a projection added back and normalized, a GELU feed-forward added back
and normalized. onnxruntime has one fused operator for each of those steps (com.microsoft EmbedLayerNormalization,
Attention, SkipLayerNormalization, BiasGelu): the graph its transformer optimizer makes from a torch export. Here
that graph is written directly from the `model.safetensors` tensors with the `onnx` helpers, so the default install
needs neither torch nor transformers; `matching.embeddings` then quantizes it to int8 as before. Inputs and output
match the torch export (input_ids, attention_mask, token_type_ids: int64; last_hidden_state: float32).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

MS_DOMAIN = "com.microsoft"
OPSET = 17


class NotBert(ValueError):
    """The model is not a plain BERT encoder with safetensors weights; the message says what differs."""


def supported(config: Mapping[str, Any], transformer_dir: Path) -> str | None:
    """None when `build_graph` can handle the model, else the reason it cannot."""
    if config.get("model_type") != "bert":
        return f"model_type {config.get('model_type')!r} is not 'bert'"
    if config.get("hidden_act", "gelu") != "gelu":
        return f"activation {config.get('hidden_act')!r} is not 'gelu'"
    if config.get("position_embedding_type", "absolute") != "absolute":
        return f"position embeddings {config.get('position_embedding_type')!r} are not absolute"
    if not (transformer_dir / "model.safetensors").is_file():
        return f"no model.safetensors in {transformer_dir}"
    return None


def load_weights(transformer_dir: Path) -> dict[str, np.ndarray]:
    """The state dict as float32 numpy arrays, with any `bert.` prefix removed."""
    from safetensors.numpy import load_file

    tensors = load_file(str(transformer_dir / "model.safetensors"))
    return {name.removeprefix("bert."): np.asarray(value, dtype=np.float32) for name, value in tensors.items()}


def build_graph(config: Mapping[str, Any], weights: Mapping[str, np.ndarray]) -> Any:
    """An onnx.ModelProto computing BertModel's last_hidden_state with onnxruntime's fused operators."""
    from onnx import TensorProto, helper, numpy_helper

    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    layers = int(config["num_hidden_layers"])
    eps = float(config.get("layer_norm_eps", 1e-12))
    if hidden % heads:
        raise NotBert(f"hidden size {hidden} is not a multiple of {heads} heads")
    initializers: list[Any] = []
    nodes: list[Any] = []

    def weight(name: str, array: np.ndarray) -> str:
        initializers.append(numpy_helper.from_array(np.ascontiguousarray(array, dtype=np.float32), name))
        return name

    def tensor(key: str) -> np.ndarray:
        if key not in weights:
            raise NotBert(f"weights lack {key}")
        return weights[key]

    def node(op: str, inputs: list[str], outputs: list[str], **attrs: Any) -> None:
        domain = MS_DOMAIN if op in ("EmbedLayerNormalization", "Attention", "SkipLayerNormalization",
                                     "BiasGelu") else ""
        nodes.append(helper.make_node(op, inputs, outputs, name=f"{op}_{len(nodes)}", domain=domain, **attrs))

    for name in ("input_ids", "attention_mask", "token_type_ids"):
        node("Cast", [name], [f"{name}_i32"], to=TensorProto.INT32)
    emb = "embeddings."
    node("EmbedLayerNormalization",
         ["input_ids_i32", "token_type_ids_i32",
          weight("word_embeddings", tensor(emb + "word_embeddings.weight")),
          weight("position_embeddings", tensor(emb + "position_embeddings.weight")),
          weight("token_type_embeddings", tensor(emb + "token_type_embeddings.weight")),
          weight("emb_ln_gamma", tensor(emb + "LayerNorm.weight")),
          weight("emb_ln_beta", tensor(emb + "LayerNorm.bias")),
          "attention_mask_i32"],
         ["layer_in_0", "mask_index"], epsilon=eps)
    for layer in range(layers):
        pre, x = f"encoder.layer.{layer}.", f"layer_in_{layer}"
        att = pre + "attention."
        qkv_w = np.concatenate([tensor(att + f"self.{part}.weight").T for part in ("query", "key", "value")], axis=1)
        qkv_b = np.concatenate([tensor(att + f"self.{part}.bias") for part in ("query", "key", "value")])
        node("Attention", [x, weight(f"l{layer}_qkv_w", qkv_w), weight(f"l{layer}_qkv_b", qkv_b), "mask_index"],
             [f"l{layer}_att"], num_heads=heads)
        node("MatMul", [f"l{layer}_att", weight(f"l{layer}_ao_w", tensor(att + "output.dense.weight").T)],
             [f"l{layer}_ao"])
        node("SkipLayerNormalization",
             [f"l{layer}_ao", x, weight(f"l{layer}_aln_g", tensor(att + "output.LayerNorm.weight")),
              weight(f"l{layer}_aln_b", tensor(att + "output.LayerNorm.bias")),
              weight(f"l{layer}_ao_b", tensor(att + "output.dense.bias"))],
             [f"l{layer}_mid"], epsilon=eps)
        node("MatMul", [f"l{layer}_mid", weight(f"l{layer}_fi_w", tensor(pre + "intermediate.dense.weight").T)],
             [f"l{layer}_fi"])
        node("BiasGelu", [f"l{layer}_fi", weight(f"l{layer}_fi_b", tensor(pre + "intermediate.dense.bias"))],
             [f"l{layer}_act"])
        node("MatMul", [f"l{layer}_act", weight(f"l{layer}_fo_w", tensor(pre + "output.dense.weight").T)],
             [f"l{layer}_fo"])
        out = "last_hidden_state" if layer == layers - 1 else f"layer_in_{layer + 1}"
        node("SkipLayerNormalization",
             [f"l{layer}_fo", f"l{layer}_mid", weight(f"l{layer}_oln_g", tensor(pre + "output.LayerNorm.weight")),
              weight(f"l{layer}_oln_b", tensor(pre + "output.LayerNorm.bias")),
              weight(f"l{layer}_fo_b", tensor(pre + "output.dense.bias"))],
             [out], epsilon=eps)
    inputs = [helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "tokens"])
              for name in ("input_ids", "attention_mask", "token_type_ids")]
    output = helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "tokens", hidden])
    graph = helper.make_graph(nodes, "bert_encoder", inputs, [output], initializers)
    model = helper.make_model(graph, producer_name="patentsift",
                              opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(MS_DOMAIN, 1)])
    model.ir_version = 8
    return model


def export(config: Mapping[str, Any], transformer_dir: Path, path: Path) -> Path:
    """Write the fused fp32 graph of the BERT model in `transformer_dir` to `path` (weights in one external file
    beside it when they pass protobuf's 2 GB limit is not needed here: small encoders only)."""
    import onnx

    reason = supported(config, transformer_dir)
    if reason:
        raise NotBert(reason)
    onnx.save_model(build_graph(config, load_weights(transformer_dir)), str(path))
    return path
