"""Subprocess helper of tests/test_vllm_weights.py and tests/test_families.py: build vLLM's real
model class on the CPU (``VLLM_TARGET_DEVICE=cpu``; no kernels run), load a trained-looking
transformers model's weights into it through empg's name mapping, and print a JSON report of what
vLLM loaded and whether every engine parameter now holds the trainer's values (q/k/v and gate/up
stacked). No argument: a tiny Llama, untied and tied; ``--families a,b``: those of
``tiny_models.FAMILIES``, vLLM's class chosen from the config's architecture."""

from __future__ import annotations

import argparse
import json
import tempfile

import torch

from empg.samplers.vllm_weights import vllm_named_weights
from faultkit import free_port
from tiny_models import as_trained, tiny_family, tiny_llama


def check(trainer_model: torch.nn.Module) -> dict[str, object]:
    config = trainer_model.config
    config.architectures = [type(trainer_model).__name__]  # what vLLM picks its class by
    tied = bool(config.tie_word_embeddings)
    plain = {n: p.detach().clone() for n, p in trainer_model.named_parameters()}
    trainer_model = as_trained(trainer_model)

    from vllm.config import DeviceConfig, ModelConfig, VllmConfig, set_current_vllm_config
    from vllm.distributed import init_distributed_environment, initialize_model_parallel
    from vllm.distributed.parallel_state import model_parallel_is_initialized
    from vllm.model_executor.model_loader.utils import get_model_architecture

    with tempfile.TemporaryDirectory() as d:
        config.save_pretrained(d)
        model_config = ModelConfig(model=d, skip_tokenizer_init=True, dtype="float32", runner="generate")
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
            engine_cls, _ = get_model_architecture(model_config)
            engine = engine_cls(vllm_config=vllm_config)
            with torch.no_grad():
                for p in engine.parameters():
                    p.zero_()
            loaded = engine.load_weights(vllm_named_weights(trainer_model.named_parameters(), tie_word_embeddings=tied))

    params = dict(engine.named_parameters())
    expected = {}
    for name in params:
        if name in plain:  # also a fused projection transformers keeps fused (Phi-3)
            expected[name] = plain[name]
        elif ".qkv_proj." in name:
            parts = [plain[name.replace("qkv_proj", p)] for p in ("q_proj", "k_proj", "v_proj")]
            expected[name] = torch.cat(parts)
        elif ".gate_up_proj." in name:
            expected[name] = torch.cat([plain[name.replace("gate_up_proj", p)] for p in ("gate_proj", "up_proj")])
        else:
            expected[name] = plain.get(name, torch.full_like(params[name], float("nan")))
    mismatched = [n for n, p in params.items() if not torch.equal(p.detach(), expected[n])]
    head = getattr(engine, "lm_head", None)
    head_is_embedding = head is None or head.weight.data_ptr() == engine.model.embed_tokens.weight.data_ptr()
    return {
        "engine_class": type(engine).__name__,
        "loaded": len(set(loaded) & set(params)),
        "engine_params": len(params),
        "unloaded": sorted(set(params) - set(loaded)),
        "mismatched": mismatched,
        "head_is_embedding": bool(head_is_embedding),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--families", default="")
    families = [f for f in ap.parse_args().families.split(",") if f]
    if families:
        print(json.dumps({f: check(tiny_family(f, dtype=torch.float32)) for f in families}))
    else:
        print(json.dumps({"untied": check(tiny_llama(tie_word_embeddings=False)),
                          "tied": check(tiny_llama(tie_word_embeddings=True))}))


if __name__ == "__main__":
    main()
