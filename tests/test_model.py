"""Tests of the tiny model, training (completion-only loss, metrics, resume) and prediction."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import torch
from safetensors.torch import load_file

from tracekd.model.chat import CHATML_TEMPLATE, ChatFormat, encode_all, prompt_ids
from tracekd.model.predict import InferenceSpec, parsed_predictions, predict
from tracekd.model.tiny import build_model_config, build_tiny_model
from tracekd.model.train import LoraSpec, TrainSpec, _check_vllm_compatible, train_model
from tracekd.traces import Setting, TraceFormat, TraceTemplate, build_traces, render_completion

TEMPLATE = TraceTemplate(
    "The reasoning task in the question is: {category}. "
    "I need to use the following facts to answer the question: {facts}"
)
PROMPT = "Context: {context} Question: {question}"
SPEC = {
    "architecture": "qwen3",
    "vocab_size": 400,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "max_position_embeddings": 512,
}
PEOPLE = ["Mary", "John", "Sandra", "Daniel"]
PLACES = ["kitchen", "garden", "hallway", "office"]
PRED_COLUMNS = [
    "output",
    "output_tokens",
    "trace_text",
    "trace_tokens",
    "pred_category",
    "pred_facts",
    "pred_answer",
    "parse_status",
    "answer_source",
]


@pytest.fixture(autouse=True, scope="module")
def _few_threads() -> Any:
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def _decomposed() -> pl.DataFrame:
    rows = []
    for i in range(11):
        who, where = PEOPLE[i % 4], PLACES[(i * 3) % 4]
        context = [
            f"{who} went to the {where}.",
            f"{PEOPLE[(i + 1) % 4]} went to the {PLACES[i % 4]}.",
        ]
        rows.append(
            {
                "id": f"r{i:02d}",
                "split": "train" if i < 8 else "test",
                "category": ["single-supporting-fact", "two-supporting-facts"][i % 2],
                "context": context,
                "question": f"Where is {who}?",
                "answers": [where],
                "relevant": [0],
            }
        )
    schema = {
        "id": pl.String,
        "split": pl.String,
        "category": pl.String,
        "context": pl.List(pl.String),
        "question": pl.String,
        "answers": pl.List(pl.String),
        "relevant": pl.List(pl.Int64),
    }
    return pl.DataFrame(rows, schema=schema)


@pytest.fixture(scope="module")
def decomposed() -> pl.DataFrame:
    return _decomposed()


@pytest.fixture(scope="module")
def traces(decomposed: pl.DataFrame) -> pl.DataFrame:
    return build_traces(
        decomposed,
        setting=Setting("correct", "trace"),
        fmt=TraceFormat(TEMPLATE, PROMPT),
    )


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory, traces: pl.DataFrame) -> Path:
    out = tmp_path_factory.mktemp("tiny") / "base"
    texts = traces["prompt"].to_list() + traces["completion"].to_list()
    info = build_tiny_model(texts, out, SPEC, seed=0)
    assert info["architecture"] == "qwen3" and info["seed"] == 0
    assert 0 < info["vocab_size"] <= 400 and info["parameters"] > 0
    return out


def _spec(**overrides: Any) -> TrainSpec:
    defaults: dict[str, Any] = {
        "epochs": 1,
        "per_device_batch_size": 4,
        "gradient_accumulation_steps": 1,
        "learning_rate": 1e-3,
        "optim": "paged_adamw_8bit",  # replaced by plain AdamW on CPU
        "max_length": 512,
        "logging_steps": 1,
        "save_steps": 100,
        "max_steps": 3,
    }
    return TrainSpec(**{**defaults, **overrides})


def _pairs(examples: pl.DataFrame) -> dict[str, list[str]]:
    return {"prompts": examples["prompt"].to_list(), "completions": examples["completion"].to_list()}


def _train(base: Path, traces: pl.DataFrame, root: Path, **kwargs: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "base": str(base),
        **_pairs(traces.filter(pl.col("split") == "train")),
        "fmt": ChatFormat(),
        "spec": _spec(),
        "lora": None,
        "quantization": None,
        "seed": 0,
        "out_dir": root / "out",
        "checkpoint_dir": root / "ckpt",
    }
    params.update(kwargs)
    return train_model(**params)


# ---------------------------------------------------------------- tiny model


def test_build_tiny_model_is_loadable(base: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base)
    assert tokenizer.chat_template == CHATML_TEMPLATE
    assert model.config.model_type == "qwen3"
    assert model.config.hidden_size == 32 and model.config.num_hidden_layers == 1
    assert model.config.vocab_size == len(tokenizer)
    assert model.config.eos_token_id == tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert model.generation_config.do_sample is False
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert text.endswith("<|im_start|>assistant\n")
    ids = torch.tensor([prompt_ids(tokenizer, "Where is Mary?", ChatFormat())])
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    assert logits.shape == (1, ids.shape[1], len(tokenizer))


def test_build_tiny_model_is_seeded(tmp_path: Path, traces: pl.DataFrame) -> None:
    texts = traces["prompt"].to_list()
    build_tiny_model(texts, tmp_path / "a", SPEC, seed=3)
    build_tiny_model(texts, tmp_path / "b", SPEC, seed=3)
    build_tiny_model(texts, tmp_path / "c", SPEC, seed=4)
    a, b, c = ((tmp_path / n / "model.safetensors").read_bytes() for n in "abc")
    assert a == b and a != c


def test_build_model_config_rejects_unknown_architecture(base: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base)
    llama = build_model_config(
        "llama", len(tokenizer), {**SPEC, "num_key_value_heads": 1}, tokenizer
    )
    assert llama.model_type == "llama" and llama.num_key_value_heads == 1
    with pytest.raises(ValueError, match="unknown tiny architecture"):
        build_model_config("gpt2", len(tokenizer), SPEC, tokenizer)


# ---------------------------------------------------------------- loss on the completion only


def test_loss_covers_completion_tokens_only(
    base: Path, traces: pl.DataFrame, tmp_path: Path
) -> None:
    """Built the way train_model builds it: pre-tokenised columns with a completion_mask."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(base)
    train = traces.filter(pl.col("split") == "train")
    fmt = ChatFormat()
    columns, truncated = encode_all(
        tokenizer, train["prompt"].to_list(), train["completion"].to_list(), fmt, 512
    )
    assert truncated == 0
    args = SFTConfig(
        output_dir=str(tmp_path / "ckpt"),
        completion_only_loss=True,
        max_length=512,
        max_steps=1,
        per_device_train_batch_size=4,
        report_to="none",
        use_cpu=True,
    )
    trainer = SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(base),
        args=args,
        train_dataset=Dataset.from_dict(columns),
        processing_class=tokenizer,
    )
    assert len(trainer.train_dataset) == train.height
    for i, (prompt, completion) in enumerate(
        zip(train["prompt"], train["completion"], strict=True)
    ):
        example = trainer.train_dataset[i]
        ids, labels = example["input_ids"], example["labels"]
        n_prompt = len(prompt_ids(tokenizer, prompt, fmt))
        assert ids == columns["input_ids"][i]
        assert labels[:n_prompt] == [-100] * n_prompt
        assert labels[n_prompt:] == ids[n_prompt:]
        assert labels[-1] == tokenizer.eos_token_id
        assert tokenizer.decode(labels[n_prompt:], skip_special_tokens=True) == completion
    # the collator pads without adding loss positions
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(3)])
    n_loss = sum(sum(m) for m in columns["completion_mask"][:3])
    assert int((batch["labels"] != -100).sum()) == n_loss


# ---------------------------------------------------------------- train_model


def test_train_model_outputs(base: Path, traces: pl.DataFrame, tmp_path: Path) -> None:
    metrics = _train(base, traces, tmp_path)
    out = tmp_path / "out"
    names = {p.name for p in out.iterdir()}
    assert "training_metrics.json" in names and "model.safetensors" in names
    assert not names & {"tokenizer.json", "tokenizer_config.json", "chat_template.jinja",
                        "special_tokens_map.json", "vocab.json"}  # fmt: skip
    assert not (tmp_path / "ckpt").exists()  # checkpoints removed by default
    saved = json.loads((out / "training_metrics.json").read_text())
    assert saved == json.loads(json.dumps(metrics))
    assert metrics["method"] == "full" and metrics["device"] == "cpu"
    assert metrics["examples"] == 8 and metrics["truncated"] == 0
    assert metrics["global_step"] == 3 and metrics["resumed_from"] is None
    assert [p["step"] for p in metrics["loss_curve"]] == [1, 2, 3]
    assert all(p["loss"] > 0 for p in metrics["loss_curve"])
    assert metrics["tokens"] > 0 and metrics["tokens_per_second"] > 0
    assert metrics["peak_memory_mb"] > 0
    assert metrics["max_length"] == 512


def test_train_model_counts_truncations(base: Path, traces: pl.DataFrame, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base)
    train = traces.filter(pl.col("split") == "train")
    longest = max(
        len(prompt_ids(tokenizer, p, ChatFormat()))
        + len(tokenizer(c, add_special_tokens=False)["input_ids"])
        + 1
        for p, c in zip(train["prompt"], train["completion"], strict=True)
    )
    metrics = _train(base, traces, tmp_path, spec=_spec(max_length=longest - 1, max_steps=1))
    assert metrics["truncated"] >= 1
    assert metrics["max_length"] == longest - 1


def test_train_model_weights_change_and_load(
    base: Path, traces: pl.DataFrame, tmp_path: Path
) -> None:
    from transformers import AutoModelForCausalLM

    _train(base, traces, tmp_path)
    before = AutoModelForCausalLM.from_pretrained(base).state_dict()
    after = AutoModelForCausalLM.from_pretrained(tmp_path / "out").state_dict()
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_train_model_resumes_after_a_kill(base: Path, traces: pl.DataFrame, tmp_path: Path) -> None:
    spec = _spec(max_steps=4, save_steps=2)
    first = _train(base, traces, tmp_path, spec=spec, keep_checkpoints=True)
    ckpt = tmp_path / "ckpt"
    assert {"checkpoint-2", "checkpoint-4"} <= {p.name for p in ckpt.iterdir()}
    assert first["resumed_from"] is None and first["global_step"] == 4
    uninterrupted = load_file(tmp_path / "out" / "model.safetensors")
    # a kill after step 2: no output, no later checkpoint
    shutil.rmtree(tmp_path / "out")
    shutil.rmtree(ckpt / "checkpoint-4")
    second = _train(base, traces, tmp_path, spec=spec)
    assert second["resumed_from"] == "checkpoint-2"
    assert second["global_step"] == 4
    assert [p["step"] for p in second["loss_curve"]] == [1, 2, 3, 4]
    assert (tmp_path / "out" / "training_metrics.json").is_file()
    assert not ckpt.exists()
    resumed = load_file(tmp_path / "out" / "model.safetensors")
    assert resumed.keys() == uninterrupted.keys()
    for name, tensor in uninterrupted.items():
        torch.testing.assert_close(resumed[name], tensor, rtol=1e-4, atol=1e-5)


def test_train_model_lora(base: Path, traces: pl.DataFrame, tmp_path: Path) -> None:
    metrics = _train(
        base, traces, tmp_path, lora=LoraSpec(r=2, alpha=4, dropout=0.0), spec=_spec(max_steps=2)
    )
    out = tmp_path / "out"
    assert metrics["method"] == "lora"
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["r"] == 2 and not config.get("modules_to_save")
    assert (out / "adapter_model.safetensors").is_file()
    assert not (out / "tokenizer.json").exists()
    frame = predict(
        base=str(base),
        adapter_dir=out,
        traces=traces,
        decomposed=_decomposed(),
        fmt=ChatFormat(),
        template=TEMPLATE,
        spec=InferenceSpec(max_new_tokens=4, batch_size=4),
        seed=0,
    )
    assert frame.height == 3 and (frame["output_tokens"] <= 4).all()


def test_train_model_refuses_bad_input(base: Path, traces: pl.DataFrame, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no training examples"):
        _train(base, traces.clear(), tmp_path)
    with pytest.raises(RuntimeError, match="4-bit"):
        _train(base, traces, tmp_path, quantization="4bit", lora=LoraSpec())
    assert not (tmp_path / "out").exists()


def test_vllm_compatibility_check(tmp_path: Path) -> None:
    _check_vllm_compatible(tmp_path)  # no adapter config: full weights, nothing to check
    (tmp_path / "adapter_config.json").write_text(json.dumps({"modules_to_save": None}))
    _check_vllm_compatible(tmp_path)
    (tmp_path / "adapter_config.json").write_text(json.dumps({"modules_to_save": ["lm_head"]}))
    with pytest.raises(ValueError, match="modules_to_save"):
        _check_vllm_compatible(tmp_path)


def test_train_spec_from_config_ignores_other_keys() -> None:
    spec = TrainSpec.from_config({"epochs": 2, "keep_checkpoints": True, "max_length": 64})
    assert spec.epochs == 2 and spec.max_length == 64
    assert spec.per_device_batch_size == TrainSpec().per_device_batch_size


@pytest.mark.parametrize("report_to", ["none", "tensorboard", ["tensorboard"]])
def test_report_to_tensorboard_writes_event_files_offline(
    base: Path, traces: pl.DataFrame, tmp_path: Path, report_to: str | list[str]
) -> None:
    """training.report_to reaches the trainer: TensorBoard's event files, with the loss of every
    logged step, beside the adapter (the checkpoints folder is deleted); nothing by default."""
    if report_to != "none":
        pytest.importorskip("tensorboard")  # the test extra's: the CPU lock installs it
    metrics = _train(base, traces, tmp_path, spec=_spec(report_to=report_to, max_steps=2))
    logs = tmp_path / "out" / "tensorboard"
    if report_to == "none":
        assert not logs.exists()
        return
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (events,) = logs.glob("events.out.tfevents.*")
    accumulator = EventAccumulator(str(logs))
    accumulator.Reload()
    assert {"train/loss", "train/learning_rate", "train/grad_norm"} <= set(
        accumulator.Tags()["scalars"]
    )
    losses = [(e.step, round(e.value, 4)) for e in accumulator.Scalars("train/loss")]
    assert losses == [(p["step"], round(p["loss"], 4)) for p in metrics["loss_curve"]]
    assert not (tmp_path / "ckpt").exists()


def test_report_to_respects_a_tensorboard_folder_set_in_the_environment(
    base: Path, traces: pl.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("tensorboard")
    monkeypatch.setenv("TENSORBOARD_LOGGING_DIR", str(tmp_path / "mine"))
    _train(base, traces, tmp_path, spec=_spec(report_to="tensorboard", max_steps=1))
    assert list((tmp_path / "mine").glob("events.out.tfevents.*"))
    assert not (tmp_path / "out" / "tensorboard").exists()


# ---------------------------------------------------------------- predict


def _predict(
    base: Path, traces: pl.DataFrame, decomposed: pl.DataFrame, **spec: Any
) -> pl.DataFrame:
    return predict(
        base=str(base),
        adapter_dir=None,
        traces=traces,
        decomposed=decomposed,
        fmt=ChatFormat(),
        template=TEMPLATE,
        spec=InferenceSpec(
            **{"engine": "transformers", "max_new_tokens": 6, "batch_size": 2, **spec}
        ),
        seed=0,
    )


def test_predict_columns_and_order(
    base: Path, traces: pl.DataFrame, decomposed: pl.DataFrame
) -> None:
    shuffled = traces.sample(fraction=1.0, shuffle=True, seed=1)
    frame = _predict(base, shuffled, decomposed)
    test_ids = shuffled.filter(pl.col("split") == "test")["id"].to_list()
    assert len(test_ids) == 3
    assert frame["id"].to_list() == test_ids
    assert frame.columns == decomposed.columns + PRED_COLUMNS
    assert frame.schema["output_tokens"] == pl.Int64
    assert frame.schema["pred_facts"] == pl.List(pl.String)
    assert (frame["output_tokens"] <= 6).all()
    assert (
        frame["parse_status"]
        .is_in(["ok", "no_trace", "unterminated", "bad_trace", "bad_facts", "empty"])
        .all()
    )
    gold = decomposed.filter(pl.col("id").is_in(test_ids))
    assert frame.select(decomposed.columns).sort("id").equals(gold.sort("id"))


def test_predict_batching_does_not_change_outputs(
    base: Path, traces: pl.DataFrame, decomposed: pl.DataFrame
) -> None:
    one = _predict(base, traces, decomposed, batch_size=1)
    three = _predict(base, traces, decomposed, batch_size=3)
    assert one["output"].to_list() == three["output"].to_list()
    assert one["output_tokens"].to_list() == three["output_tokens"].to_list()


def test_predict_with_a_trained_model(
    base: Path, traces: pl.DataFrame, decomposed: pl.DataFrame, tmp_path: Path
) -> None:
    _train(base, traces, tmp_path, spec=_spec(max_steps=1))
    frame = predict(
        base=str(base),
        adapter_dir=tmp_path / "out",
        traces=traces,
        decomposed=decomposed,
        fmt=ChatFormat(),
        template=TEMPLATE,
        spec=InferenceSpec(max_new_tokens=4, batch_size=4),
        seed=0,
    )
    assert frame.height == 3 and frame.columns[-len(PRED_COLUMNS) :] == PRED_COLUMNS


def test_predict_unknown_engine(base: Path, traces: pl.DataFrame, decomposed: pl.DataFrame) -> None:
    with pytest.raises(ValueError, match="unknown inference engine"):
        _predict(base, traces, decomposed, engine="onnx")


def test_parsed_predictions_fills_the_columns(
    base: Path, traces: pl.DataFrame, decomposed: pl.DataFrame
) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base)
    test = traces.filter(pl.col("split") == "test").select("id", "prompt")
    good = render_completion(
        Setting("correct", "trace"), TEMPLATE, ["garden"], "counting", ["Mary went to the garden."]
    )
    generations = [(good, 30), ('["garden"]', 4), ("", 0)]
    frame = parsed_predictions(test, decomposed, generations, TEMPLATE, tokenizer)
    assert frame["id"].to_list() == test["id"].to_list()
    assert frame["parse_status"].to_list() == ["ok", "no_trace", "empty"]
    assert frame["pred_category"].to_list() == ["counting", None, None]
    assert frame["pred_facts"].to_list() == [["Mary went to the garden."], None, None]
    assert frame["pred_answer"].to_list() == ['["garden"]', '["garden"]', None]
    assert frame["output_tokens"].to_list() == [30, 4, 0]
    trace_tokens = frame["trace_tokens"].to_list()
    assert trace_tokens[0] == len(
        tokenizer(frame["trace_text"][0], add_special_tokens=False)["input_ids"]
    )
    assert trace_tokens[1:] == [0, 0]
