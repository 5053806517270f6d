"""Corrupted traces, each drawn with a seeded RNG per row.

The paper's incorrect trace (``corrupt_trace``: both steps wrong) and the pieces of the
further schemes: another category (``wrong_category``), a share of the gold facts replaced
(``replace_facts``), a derangement of whole traces (``derangement``), another problem's
answer (``wrong_answer``), the trace as dots of its token length (``filler_text``).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
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
    drawn_category = wrong_category(rng, category, categories)
    k = max(len(relevant), 1)
    facts, indices, source = draw_non_gold(rng, k, context=context, relevant=relevant, donors=donors)
    return Corruption(drawn_category, facts, indices, source)


def draw_non_gold(
    rng: random.Random,
    k: int,
    *,
    context: Sequence[str],
    relevant: Sequence[int],
    donors: Sequence[Sequence[str]],
) -> tuple[list[str], list[int], str]:
    """``k`` distinct non-gold facts: the context's own first, then other contexts' (``donors``).

    Returns ``(facts, indices, source)``: indices into the context (-1: borrowed) and
    ``same_context``, ``other_context`` or ``mixed``; raises when it cannot draw ``k``.
    """
    gold_text = {context[i] for i in relevant}
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
    return facts, indices, source


# ---------------------------------------------------------------- one step, a share, a swap


def replaced_count(share: float, n_gold: int) -> int:
    """How many of ``n_gold`` gold facts a ``share`` replaces: ``share * n_gold`` rounded half
    up, at least one, at most all (a problem without gold facts gets one drawn fact)."""
    if not 0.0 < share <= 1.0:
        raise ValueError(f"share must be in (0, 1], got {share}")
    return min(max(math.floor(share * n_gold + 0.5), 1), max(n_gold, 1))


def wrong_category(rng: random.Random, category: str, categories: Sequence[str]) -> str:
    """A category other than ``category``, drawn from ``categories``; raises with none other."""
    others = sorted(c for c in set(categories) if c != category)
    if not others:
        raise ValueError(f"cannot corrupt category {category!r}: the dataset has no other category")
    return rng.choice(others)


def replace_facts(
    rng: random.Random,
    *,
    share: float,
    context: Sequence[str],
    relevant: Sequence[int],
    donors: Sequence[Sequence[str]],
) -> tuple[list[str], list[int], int, str]:
    """The gold facts with ``replaced_count(share, n)`` of them replaced by non-gold facts.

    Replacements come from the same context's non-gold sentences (as the paper's incorrect
    trace draws them) and, when it has too few, from other problems' contexts (``donors``).
    Kept gold facts and same-context replacements stay in context order, borrowed ones follow.
    Returns ``(facts, indices, replaced, source)``: indices into the context (-1: borrowed),
    how many were replaced, and ``same_context``/``other_context``/``mixed``.
    """
    gold = list(relevant)
    k = replaced_count(share, len(gold))
    dropped = set(rng.sample(gold, k)) if len(gold) >= k else set(gold)
    kept = [i for i in gold if i not in dropped]
    drawn, indices, source = draw_non_gold(rng, k, context=context, relevant=gold, donors=donors)
    own = sorted([*kept, *(i for i in indices if i >= 0)])
    borrowed = [f for f, i in zip(drawn, indices, strict=True) if i < 0]
    facts = [context[i] for i in own] + borrowed
    return facts, own + [-1] * len(borrowed), k, source


def derangement(rng: random.Random, n: int) -> list[int]:
    """A uniformly drawn permutation of ``range(n)`` that moves every position (n >= 2).

    Rejection sampling: a shuffle is a derangement with probability about 1/e, so a few
    shuffles suffice on average; the draw depends only on ``rng`` and ``n``.
    """
    if n < 2:
        raise ValueError(f"cannot swap traces among {n} problem(s): a derangement needs two")
    order = list(range(n))
    while True:
        rng.shuffle(order)
        if all(i != j for i, j in enumerate(order)):
            return list(order)


def _answer_key(answers: Sequence[str]) -> tuple[str, ...]:
    """Answers compared as a set, case and surrounding space ignored (qa8's lists are unordered)."""
    return tuple(sorted({" ".join(a.lower().split()) for a in answers}))


def wrong_answer(
    rng: random.Random,
    *,
    answers: Sequence[str],
    same_category: Sequence[tuple[str, Sequence[str]]],
    anywhere: Sequence[tuple[str, Sequence[str]]],
) -> tuple[list[str], str, str]:
    """A gold answer of another problem, never equal to ``answers``.

    ``same_category``/``anywhere`` are ``(id, answers)`` of candidate problems (the same split
    and category; the same split). The same category is drawn from when any of its answers
    differs, else any problem. Returns ``(answers, donor id, "same_category"|"other_category")``;
    raises when no candidate has a different answer.
    """
    own = _answer_key(answers)
    for pool, scope in ((same_category, "same_category"), (anywhere, "other_category")):
        different = [(i, a) for i, a in pool if _answer_key(a) != own]
        if different:
            donor, chosen = different[rng.randrange(len(different))]
            return list(chosen), donor, scope
    raise ValueError(f"no other problem has an answer different from {list(answers)!r}")


# ---------------------------------------------------------------- filler in the model's tokens

#: the filler's units, tried in turn: dots, or dots with a space where a tokenizer merges ".."
FILLER_UNITS = (".", " .", ". ")


def filler_text(n_tokens: int, count_tokens: Callable[[str], int]) -> str:
    """Repeated dots that ``count_tokens`` (the model's tokenizer) reads as ``n_tokens`` tokens.

    The shortest repetition of the first unit of ``FILLER_UNITS`` whose token count is exactly
    ``n_tokens`` (a tokenizer may merge dots, so the count is searched, not assumed); raises
    when no unit reaches it exactly.
    """
    if n_tokens <= 0:
        return ""
    for unit in FILLER_UNITS:
        low, high = 1, 4 * n_tokens + 8
        while low < high:  # the fewest repeats with at least n_tokens tokens
            middle = (low + high) // 2
            if count_tokens(unit * middle) >= n_tokens:
                high = middle
            else:
                low = middle + 1
        if count_tokens(unit * low) == n_tokens:
            return unit * low
    raise ValueError(f"no filler of dots tokenizes to exactly {n_tokens} tokens")
