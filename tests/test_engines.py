"""The GPU seam on CPU: vLLM's call shapes with a stand-in module, one prompt for every engine."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tracekd.model import gpu
from tracekd.model import predict as predict_module
from tracekd.model.chat import ChatFormat, encode_example, prompt_ids
from tracekd.model.predict import InferenceSpec, predict
from tracekd.model.tiny import train_tokenizer
from tracekd.traces import Setting, TraceFormat, TraceTemplate, build_traces

TEMPLATE = TraceTemplate("The task is: {category}. Facts: {facts}")
PROMPT = "Context: {context} Question: {question}"


class FakeVLLM:
    """Records what tracekd asks of vLLM and answers like it (one completion per prompt)."""

    def __init__(self) -> None:
        self.llm_kwargs: dict[str, Any] = {}
        self.generate_args: tuple = ()
        self.generate_kwargs: dict[str, Any] = {}

    def module(self) -> dict[str, types.ModuleType]:
        fake = self

        class LLM:
            def __init__(self, **kwargs: Any) -> None:
                fake.llm_kwargs = kwargs

            def generate(self, prompts: list, params: Any, **kwargs: Any) -> list:
                fake.generate_args, fake.generate_kwargs = (prompts, params), kwargs
                done = types.SimpleNamespace(text="<answer>[\"x\"]</answer>", token_ids=[1, 2, 3])
                return [types.SimpleNamespace(outputs=[done]) for _ in prompts]

        def sampling_params(**kwargs: Any) -> dict[str, Any]:
            return kwargs

        def tokens_prompt(prompt_token_ids: list[int]) -> dict[str, list[int]]:
            return {"prompt_token_ids": prompt_token_ids}

        def lora_request(name: str, lora_id: int, path: str) -> tuple[str, int, str]:
            return (name, lora_id, path)

        vllm = types.ModuleType("vllm")
        vllm.LLM, vllm.SamplingParams = LLM, sampling_params
        inputs = types.ModuleType("vllm.inputs")
        inputs.TokensPrompt = tokens_prompt
        lora = types.ModuleType("vllm.lora")
        request = types.ModuleType("vllm.lora.request")
        request.LoRARequest = lora_request
        return {"vllm": vllm, "vllm.inputs": inputs, "vllm.lora": lora, "vllm.lora.request": request}


@pytest.fixture
def fake_vllm(monkeypatch: pytest.MonkeyPatch) -> FakeVLLM:
    fake = FakeVLLM()
    for name, module in fake.module().items():
        monkeypatch.setitem(sys.modules, name, module)
    return fake


def test_vllm_with_a_lora_adapter(fake_vllm: FakeVLLM, tmp_path: Path) -> None:
    (tmp_path / "adapter_config.json").write_text("{}")
    out = gpu.vllm_generate(
        "base/model", tmp_path, [[5, 6], [7]], max_new_tokens=32, max_lora_rank=16,
        max_model_len=2048, gpu_memory_utilization=0.8, seed=3, stop_token_ids=[9],
    )
    assert out == [('<answer>["x"]</answer>', 3)] * 2
    kwargs = fake_vllm.llm_kwargs
    assert kwargs["model"] == "base/model" and kwargs["enable_lora"] is True
    assert kwargs["max_lora_rank"] == 16 and kwargs["trust_remote_code"] is False
    prompts, params = fake_vllm.generate_args
    assert prompts == [{"prompt_token_ids": [5, 6]}, {"prompt_token_ids": [7]}]
    assert params["temperature"] == 0.0 and params["max_tokens"] == 32
    assert params["stop_token_ids"] == [9]
    assert fake_vllm.generate_kwargs["lora_request"] == ("adapter", 1, str(tmp_path))
    assert fake_vllm.generate_kwargs["use_tqdm"] is True


def test_vllm_with_full_weights_and_the_base_tokenizer(fake_vllm: FakeVLLM, tmp_path: Path) -> None:
    gpu.vllm_generate(
        "base/model", tmp_path, [[1]], max_new_tokens=4, max_lora_rank=8, max_model_len=512,
        gpu_memory_utilization=0.5, seed=0, stop_token_ids=[2],
    )
    assert fake_vllm.llm_kwargs["model"] == str(tmp_path)
    assert fake_vllm.llm_kwargs["tokenizer"] == "base/model"
    assert "enable_lora" not in fake_vllm.llm_kwargs
    assert fake_vllm.generate_kwargs["lora_request"] is None


def test_quantization_config_is_nf4_with_double_quantization() -> None:
    config = gpu.quantization_config("4bit")
    assert config.load_in_4bit and config.bnb_4bit_quant_type == "nf4"
    assert config.bnb_4bit_use_double_quant is True
    assert gpu.quantization_config(None) is None and gpu.quantization_config("none") is None
    with pytest.raises(ValueError, match="unknown quantization"):
        gpu.quantization_config("3bit")


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pl.DataFrame]:
    decomposed = pl.DataFrame(
        {
            "id": ["a", "b", "c"],
            "split": ["train", "test", "test"],
            "category": ["one", "two", "one"],
            "context": [["Mary went home.", "John slept."], ["Bob ran."], ["It rained.", "Sun."]],
            "question": ["Where is Mary?", "Who ran?", "Weather?"],
            "answers": [["home"], ["Bob"], ["rain"]],
            "relevant": [[0], [0], [0]],
        }
    )
    traces = build_traces(
        decomposed, setting=Setting("correct", "trace"), fmt=TraceFormat(TEMPLATE, PROMPT)
    )
    base = tmp_path_factory.mktemp("base")
    tokenizer = train_tokenizer(traces["prompt"].to_list() + traces["completion"].to_list(), 400)
    tokenizer.save_pretrained(base)
    return base, traces


def test_every_engine_and_training_see_the_same_prompt_tokens(
    tiny_base: tuple[Path, pl.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, traces = tiny_base
    decomposed = traces.select("id", "split")
    seen: dict[str, list[list[int]]] = {}

    def fake_vllm_generate(base: str, adapter: Any, prompts: list, **kwargs: Any) -> list:
        seen["vllm"] = [list(p) for p in prompts]
        return [("", 0)] * len(prompts)

    def fake_transformers(model: Any, tokenizer: Any, prompts: list, **kwargs: Any) -> list:
        seen["transformers"] = [list(p) for p in prompts]
        return [("", 0)] * len(prompts)

    monkeypatch.setattr(gpu, "vllm_generate", fake_vllm_generate)
    monkeypatch.setattr(predict_module, "generate_transformers", fake_transformers)
    monkeypatch.setattr(predict_module, "load_model", lambda base, adapter: None)
    fmt = ChatFormat(system="Be brief.")
    for engine in ("vllm", "transformers"):
        predict(
            base=str(base), adapter_dir=None, traces=traces, decomposed=decomposed, fmt=fmt,
            template=TEMPLATE, spec=InferenceSpec(engine=engine), seed=0,
        )
    assert seen["vllm"] == seen["transformers"] and len(seen["vllm"]) == 2

    tokenizer = predict_module.load_tokenizer(str(base))
    test = traces.filter(pl.col("split") == "test")
    for user, completion, ids in zip(test["prompt"], test["completion"], seen["vllm"], strict=True):
        assert ids == prompt_ids(tokenizer, user, fmt)
        trained = encode_example(tokenizer, user, completion, fmt, max_length=4096)
        assert trained.input_ids[: len(ids)] == ids
        assert trained.completion_mask[: len(ids)] == [0] * len(ids)


def test_unknown_engine_is_refused(tiny_base: tuple[Path, pl.DataFrame]) -> None:
    base, traces = tiny_base
    with pytest.raises(ValueError, match="unknown inference engine"):
        predict(
            base=str(base), adapter_dir=None, traces=traces, decomposed=traces.select("id"),
            fmt=ChatFormat(), template=TEMPLATE, spec=InferenceSpec(engine="tgi"), seed=0,
        )
