"""Incorrect traces: the paper's corruption, drawn with a seeded RNG per row."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Corruption:
    """A wrong trace: the drawn category and facts, and where the facts came from."""

    category: str
    facts: list[str]
    relevant: list[int]  # indices into the row's context; -1 for a fact borrowed from elsewhere
    source: str  # "same_context", "other_context" or "mixed"


def corrupt_trace(
    rng: random.Random,
    *,
    category: str,
    categories: Sequence[str],
    context: Sequence[str],
    relevant: Sequence[int],
    donors: Sequence[Sequence[str]],
) -> Corruption:
    """The paper's incorrect trace: another category, and as many facts as the gold set, none gold.

    Facts come from the non-relevant sentences of the same context; when it has too few, the rest
    are drawn from other problems' contexts (``donors``), skipping sentences equal to a gold fact.
    """
    others = sorted(c for c in set(categories) if c != category)
    if not others:
        raise ValueError(f"cannot corrupt category {category!r}: the dataset has no other category")
    wrong_category = rng.choice(others)
    gold_text = {context[i] for i in relevant}
    k = max(len(relevant), 1)
    # one position per distinct non-gold sentence, so a repeated sentence is not picked twice
    first_seen: dict[str, int] = {}
    for i, sentence in enumerate(context):
        if i not in set(relevant) and sentence not in gold_text:
            first_seen.setdefault(sentence, i)
    pool = sorted(first_seen.values())
    picked = sorted(rng.sample(pool, min(k, len(pool))))
    facts = [context[i] for i in picked]
    indices = list(picked)
    borrowed = 0
    for _ in range(100 * k):
        if len(facts) >= k or not donors:
            break
        donor = donors[rng.randrange(len(donors))]
        if not donor:
            continue
        sentence = donor[rng.randrange(len(donor))]
        if sentence in gold_text or sentence in facts:
            continue
        facts.append(sentence)
        indices.append(-1)
        borrowed += 1
    if len(facts) < k:
        raise ValueError("cannot draw enough non-gold facts for an incorrect trace")
    source = "same_context" if borrowed == 0 else ("other_context" if not picked else "mixed")
    return Corruption(wrong_category, facts, indices, source)
