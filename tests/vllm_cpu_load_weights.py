"""Subprocess helper of tests/test_vllm_weights.py: build vLLM's real LlamaForCausalLM on the CPU
(``VLLM_TARGET_DEVICE=cpu``; no kernels run), load a trained-looking transformers model's weights
into it through empg's name mapping, and print a JSON report of what vLLM loaded and whether every
engine parameter now holds the trainer's values (q/k/v and gate/up stacked)."""

from __future__ import annotations

import json
import tempfile

import torch

from empg.samplers.vllm_weights import vllm_named_weights
from faultkit import free_port
from tiny_models import as_trained, tiny_llama


def check(tied: bool) -> dict[str, object]:
    trainer_model = tiny_llama(tie_word_embeddings=tied)
    config = trainer_model.config
    plain = {n: p.detach().clone() for n, p in trainer_model.named_parameters()}
    trainer_model = as_trained(trainer_model)

    from vllm.config import DeviceConfig, ModelConfig, VllmConfig, set_current_vllm_config
    from vllm.distributed import init_distributed_environment, initialize_model_parallel
    from vllm.distributed.parallel_state import model_parallel_is_initialized
    from vllm.model_executor.models.llama import LlamaForCausalLM

    with tempfile.TemporaryDirectory() as d:
        config.save_pretrained(d)
        model_config = ModelConfig(model=d, skip_tokenizer_init=True, dtype="float32")
        vllm_config = VllmConfig(model_config=model_config, device_config=DeviceConfig(device="cpu"))
        with set_current_vllm_config(vllm_config):
            if not model_parallel_is_initialized():
                init_distributed_environment(
                    world_size=1,
                    rank=0,
                    distributed_init_method=f"tcp://127.0.0.1:{free_port()}",
                    local_rank=0,
                    backend="gloo",
                )
                initialize_model_parallel(1, 1)
            engine = LlamaForCausalLM(vllm_config=vllm_config)
            with torch.no_grad():
                for p in engine.parameters():
                    p.zero_()
            loaded = engine.load_weights(vllm_named_weights(trainer_model.named_parameters(), tie_word_embeddings=tied))

    params = dict(engine.named_parameters())
    expected = {}
    for name in params:
        if ".qkv_proj." in name:
            parts = [plain[name.replace("qkv_proj", p)] for p in ("q_proj", "k_proj", "v_proj")]
            expected[name] = torch.cat(parts)
        elif ".gate_up_proj." in name:
            expected[name] = torch.cat([plain[name.replace("gate_up_proj", p)] for p in ("gate_proj", "up_proj")])
        else:
            expected[name] = plain[name]
    mismatched = [n for n, p in params.items() if not torch.equal(p.detach(), expected[n])]
    head_is_embedding = engine.lm_head.weight.data_ptr() == engine.model.embed_tokens.weight.data_ptr()
    return {
        "loaded": len(set(loaded) & set(params)),
        "engine_params": len(params),
        "unloaded": sorted(set(params) - set(loaded)),
        "mismatched": mismatched,
        "head_is_embedding": bool(head_is_embedding),
    }


def main() -> None:
    print(json.dumps({"untied": check(tied=False), "tied": check(tied=True)}))


if __name__ == "__main__":
    main()
