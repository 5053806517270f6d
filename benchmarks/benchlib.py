"""Shared pieces of the benchmark scripts: examples, timed training and generation, the report.

Imported by ``gpu_bench.py`` and ``cpu_bench.py`` from this folder; every figure is measured by
the workflow's own code (:func:`tracekd.model.train.train_model`, :mod:`tracekd.model.generate`).
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import platform
import random
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tracekd.model.chat import ChatFormat, prompt_ids, prompt_text
from tracekd.traces import TraceFormat, TraceTemplate

#: the paper's prompt and trace formats (config/config.yaml): list literals, newlines
PROMPT = "Answer the question based on the context:\n{context}\nQuestion: {question} Only return the answer.\n"
COTEMP = TraceFormat(
    TraceTemplate(
        "The temporal relation between the event in question and the event in context is: "
        "{category}.\nI need to use the following facts to answer the question: {facts}",
        facts="python_list",
    ),
    prompt_template=PROMPT, context="python_list", answer="python_list",
)  # fmt: skip
MARCO = TraceFormat(
    TraceTemplate(
        "The category of the question represents what is being asked in that question. The "
        "category of the question asked is: {category}.\nI need to use the following text to "
        "answer the question: {facts}",
        facts="python_list",
    ),
    prompt_template=PROMPT, context="python_list", answer="text",
)  # fmt: skip
#: the authors' released runs put a system message like this one before every prompt
SYSTEM = (
    "You are Llama, an AI assistant created to be helpful and honest. Your knowledge spans a wide "
    "range of topics, allowing you to engage in substantive conversations and provide analysis on "
    "complex subjects."
)
_NAMES = ["Anna Berg", "Carlo Duarte", "Edith Fournier", "Goran Holm", "Ines Jaeger", "Karl Lund",
          "Marta Novak", "Olaf Petit", "Rosa Sato", "Tomas Ueda", "Vera Weiss", "Yusuf Zand"]  # fmt: skip
_ORGS = ["the University of Leiden", "Siemens", "the Royal Society", "FC Porto", "Bayer", "CERN",
         "the BBC", "Renault", "the Paris Opera", "Nokia", "the Bundestag", "Unilever"]  # fmt: skip
_MONTHS = ["January", "March", "May", "June", "August", "October", "December"]
_WORDS = ("the of and to in is was for that with as on by at from it an be this are which or has "
          "have one their its also after first new other time were more some two about into such "
          "year city water used people known system called part world most made between during "
          "many three area state large number form small high united national century government "
          "river body blood cost average price temperature degree average treatment common type "
          "found example well often usually include process different level based long average").split()  # fmt: skip


def cotemp_like(rng: random.Random) -> tuple[str, str]:
    """A CoTempQA-sized problem: 10-15 dated facts, a trace naming 1-3 of them, the answer."""
    subject = rng.choice(_NAMES)
    facts = []
    for _ in range(rng.randint(10, 15)):
        start = rng.randint(1950, 2015)
        facts.append(f"{subject} was a member of {rng.choice(_ORGS)} from {rng.choice(_MONTHS)}, "
                     f"{start} to {rng.choice(_MONTHS)} {start + rng.randint(1, 9)}.")  # fmt: skip
    relevant = rng.sample(facts, rng.randint(1, 3))
    answer = [rng.choice(_ORGS)]
    question = f"While {subject} was a member of {rng.choice(_ORGS)}, which organisation did {subject} join?"
    completion = COTEMP.render_completion(
        "trace", answer, rng.choice(["equal", "overlap", "during", "mix"]), relevant
    )
    return COTEMP.prompt(facts, question), completion


def marco_like(rng: random.Random) -> tuple[str, str]:
    """An MS MARCO-sized problem: 10 passages of 55-85 words, a trace quoting one, the answer."""
    passages = [" ".join(rng.choice(_WORDS) for _ in range(rng.randint(55, 85))).capitalize() + "."
                for _ in range(10)]  # fmt: skip
    answer = [" ".join(rng.choice(_WORDS) for _ in range(rng.randint(3, 12)))]
    question = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(4, 9))) + "?"
    completion = MARCO.render_completion(
        "trace", answer, rng.choice(["description", "numeric", "entity"]), [rng.choice(passages)]
    )
    return MARCO.prompt(passages, question), completion


def real_length_examples(n: int, seed: int) -> tuple[list[str], list[str]]:
    """``n`` prompts and correct-trace completions, CoTemp- and MARCO-like alternately."""
    rng = random.Random(seed)
    pairs = [(cotemp_like if i % 2 == 0 else marco_like)(rng) for i in range(n)]
    return [p for p, _ in pairs], [c for _, c in pairs]


def versions() -> dict[str, str | None]:
    """Versions of the libraries the measured paths depend on (None: not installed)."""
    found: dict[str, str | None] = {}
    for name in ("torch", "transformers", "trl", "peft", "accelerate", "bitsandbytes",
                 "flash_attn", "liger_kernel", "vllm"):  # fmt: skip
        try:
            found[name] = str(importlib.import_module(name).__version__)
        except Exception as err:  # noqa: BLE001 - report any import failure as missing
            found[name] = None if isinstance(err, ImportError) else f"error: {err}"
    return found


def device_name() -> str:
    """The GPU's name, or the CPU's model name."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


def header(mode: str) -> dict[str, Any]:
    """What every report starts with: device, date, versions, thread count."""
    import torch

    return {"mode": mode, "device": device_name(), "date": dt.date.today().isoformat(),
            "python": platform.python_version(), "torch_threads": torch.get_num_threads(),
            "versions": versions()}  # fmt: skip


def write_report(report: Mapping[str, Any], out_dir: Path, stem: str) -> Path:
    """``{stem}_{device}_{date}.json`` under ``out_dir``; prints the JSON too."""
    text = json.dumps(report, indent=2) + "\n"
    print(text, end="", flush=True)
    slug = re.sub(r"[^a-z0-9]+", "-", str(report["device"]).lower()).strip("-")[:40]
    path = Path(out_dir) / f"{stem}_{slug}_{report['date']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def train_summary(metrics: Mapping[str, Any], job_seconds: float) -> dict[str, Any]:
    """The figures of one :func:`~tracekd.model.train.train_model` run worth comparing."""
    keys = ("tokens_trained", "tokens_per_second", "peak_memory_mb", "wall_seconds", "global_step",
            "train_loss", "method", "recipe")  # fmt: skip
    out = {k: metrics.get(k) for k in keys}
    out["job_seconds"] = round(job_seconds, 2)  # model load, probe and saving included
    return out


def generation(
    model: Any, tokenizer: Any, prompts: Sequence[Sequence[int]], *, max_new_tokens: int,
    batch_size: int, single: int,
) -> dict[str, Any]:  # fmt: skip
    """Greedy tokens/s of the batched engine against a one-prompt-at-a-time loop on the same prompts.

    The loop (the authors' inference: ``generate`` per prompt on a merged model) runs on the
    first ``single`` prompts; both outputs of those prompts are compared token for token.
    """
    import torch

    from tracekd.model.generate import generate_transformers

    def timed(batch: Sequence[Sequence[int]], size: int) -> tuple[list[tuple[str, int]], float, float]:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        out = generate_transformers(model, tokenizer, batch, max_new_tokens=max_new_tokens, batch_size=size)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
        return out, time.perf_counter() - started, peak

    generate_transformers(model, tokenizer, prompts[:1], max_new_tokens=2, batch_size=1)  # warm-up
    batched, batched_s, batched_peak = timed(prompts, batch_size)
    one, one_s, one_peak = timed(prompts[:single], 1)
    same = sum(a[0] == b[0] for a, b in zip(batched[:single], one, strict=True))
    batched_tokens, one_tokens = sum(n for _, n in batched), sum(n for _, n in one)
    result = {
        "max_new_tokens": max_new_tokens,
        "batched": {"prompts": len(prompts), "batch_size": batch_size, "generated_tokens": batched_tokens,
                    "seconds": round(batched_s, 2), "tokens_per_second": round(batched_tokens / batched_s, 1),
                    "peak_memory_mb": batched_peak and round(batched_peak, 1)},  # fmt: skip
        "one_at_a_time": {"prompts": single, "generated_tokens": one_tokens, "seconds": round(one_s, 2),
                          "tokens_per_second": round(one_tokens / one_s, 1),
                          "peak_memory_mb": one_peak and round(one_peak, 1)},  # fmt: skip
        "identical_outputs": f"{same}/{single}",
    }
    result["batched_over_one_at_a_time"] = round(
        result["batched"]["tokens_per_second"] / max(result["one_at_a_time"]["tokens_per_second"], 1e-9), 2
    )
    return result


def chat_ids(tokenizer: Any, prompts: Sequence[str], fmt: ChatFormat) -> list[list[int]]:
    """Prompt token ids as the workflow renders them."""
    return [prompt_ids(tokenizer, p, fmt) for p in prompts]


def chat_texts(tokenizer: Any, prompts: Sequence[str], completions: Sequence[str], fmt: ChatFormat) -> list[str]:
    """Whole training texts (prompt, completion, end of turn), as the authors' text datasets held them."""
    eot = tokenizer.eos_token
    return [prompt_text(tokenizer, p, fmt) + c + eot for p, c in zip(prompts, completions, strict=True)]
