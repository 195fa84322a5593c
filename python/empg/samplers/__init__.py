"""E-step engines implementing :class:`empg.sampling.Sampler`. Each backend lives in its own module
and is imported only when chosen (``empg.samplers.vllm`` needs the ``empg[vllm]`` extra)."""
