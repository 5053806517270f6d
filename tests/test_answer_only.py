"""Every answer rule sees only the final answer: the trace never changes an answer score.

A hypothesis property over all three datasets and both CoTemp variants, with the study's own
prompt and trace formats (config/config.yaml): an output with an answer span is scored twice,
once with its trace's category and facts replaced by any others (facts from the context, facts
naming a gold answer or another entity, arbitrary text), and every answer column of the scores
must be the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracekd.config import load_config
from tracekd.evaluate.score import score_predictions
from tracekd.traces import TraceFormat, parse_output

CONFIG = load_config(Path(__file__).resolve().parents[1] / "config" / "config.yaml")
ANSWER_COLUMNS = ["answer_correct", "answer_em", "answer_f1", "answer_precision", "answer_recall"]

NAMES = ["Ann Lee", "Bob Ray", "Cy Doe"]
ORGS = ["Acme Corp", "Beta League", "Green Party", "Labour Party", "Omega Club"]
#: (dataset, answer rule, CoTemp variant)
RULES = [("CoTemp", "cotemp", "cotempqa"), ("CoTemp", "cotemp", "paper"),
         ("bAbI", "babi", "cotempqa"), ("MARCO", "marco", "cotempqa")]  # fmt: skip
CATEGORIES = {
    "CoTemp": ["equal", "overlap", "during", "mix"],
    "bAbI": ["single-supporting-fact", "lists-sets", "counting", "basic-induction"],
    "MARCO": ["description", "numeric", "entity", "location", "person"],
}


@st.composite
def problems(draw: st.DrawFn) -> dict[str, Any]:
    """A problem, its output with an answer span, and a second trace to put in its place."""
    dataset, rule, variant = draw(st.sampled_from(RULES))
    subject = draw(st.sampled_from(NAMES))
    context = [
        f"{subject} works for {org} from {1990 + i} to {1995 + i}." for i, org in enumerate(ORGS)
    ]
    gold = draw(st.lists(st.sampled_from(ORGS), min_size=1, max_size=2, unique=True))
    shown = draw(st.lists(st.sampled_from([*ORGS, *NAMES, "no idea"]), min_size=0, max_size=3))
    fact = st.one_of(
        st.sampled_from(context),
        st.sampled_from(ORGS).map(lambda org: f"{org} answer {org} is the answer: {org}."),
        st.text(max_size=40),
    )
    trace = st.tuples(st.sampled_from(CATEGORIES[dataset]), st.lists(fact, max_size=4))
    return {
        "dataset": dataset, "rule": rule, "variant": variant, "context": context, "gold": gold,
        "shown": shown, "traces": (draw(trace), draw(trace)), "subject": subject,
        "category": draw(st.sampled_from(CATEGORIES[dataset])),
    }  # fmt: skip


def _frame(problem: dict[str, Any], category: str, facts: list[str]) -> pl.DataFrame:
    """The predictions frame of one output whose trace says ``category`` and ``facts``."""
    dataset = problem["dataset"]
    trace_format = TraceFormat.from_config(CONFIG["datasets"][dataset])
    output = trace_format.render_completion("trace", problem["shown"], category, facts)
    parsed = parse_output(output, trace_format.trace)
    assert parsed.answer_source == "answer_tag"
    return pl.DataFrame(
        [{
            "id": "p-1", "split": "test", "category": problem["category"],
            "context": problem["context"],
            "question": f"While {problem['subject']} worked for Acme Corp, which employer?",
            "answers": problem["gold"], "relevant": [0], "triple_element": "S1_R1_O2",
            "task": "qa8" if dataset == "bAbI" else None, "output": output,
            "trace_text": parsed.trace_text,
            "trace_tokens": 10, "pred_category": parsed.category, "pred_facts": parsed.facts,
            "pred_answer": parsed.answer, "parse_status": parsed.status,
            "answer_source": parsed.answer_source,
        }],  # fmt: skip
        schema={
            "id": pl.String, "split": pl.String, "category": pl.String,
            "context": pl.List(pl.String), "question": pl.String, "answers": pl.List(pl.String),
            "relevant": pl.List(pl.Int64), "triple_element": pl.String, "task": pl.String,
            "output": pl.String, "trace_text": pl.String, "trace_tokens": pl.Int64, "pred_category": pl.String,
            "pred_facts": pl.List(pl.String), "pred_answer": pl.String,
            "parse_status": pl.String, "answer_source": pl.String,
        },  # fmt: skip
    )


def _answer_scores(problem: dict[str, Any], category: str, facts: list[str]) -> dict[str, Any]:
    frame = _frame(problem, category, facts)
    scores = score_predictions(
        frame, answer_rule=problem["rule"], options={"answer_variant": problem["variant"]}
    )
    return scores.select(ANSWER_COLUMNS).row(0, named=True)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_replacing_the_trace_leaves_every_answer_score_unchanged(problem: dict[str, Any]) -> None:
    (first, second) = problem["traces"]
    assert _answer_scores(problem, *first) == _answer_scores(problem, *second)
