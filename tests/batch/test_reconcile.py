"""Reconciliation's rules, as properties: a prediction is adopted only by the one item it
provably belongs to; an item is re-created only when nothing on the server matches it."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from replicate_async.batch import BatchItem
from replicate_async.batch._reconcile import KEY_PARAM, Target, verdicts
from replicate_async.models import Prediction

TARGET = Target(model="fake/echo", version=None)
texts = st.sampled_from(["a", "b", "c", "d"])


def prediction(n: int, text: str, *, model: str = "fake/echo", key: str | None = None) -> Any:
    hook = f"https://hooks.example.com/?{KEY_PARAM}={key}" if key is not None else None
    return Prediction(
        id=f"p{n}", status="starting", model=model, input={"text": text}, webhook=hook
    )


@settings(max_examples=200, deadline=None)
@given(
    items=st.lists(texts, min_size=1, max_size=6),
    made=st.lists(st.tuples(texts, st.booleans()), max_size=8),
)
def test_by_input_adopts_only_unambiguous_exact_matches(
    items: list[str], made: list[tuple[str, bool]]
) -> None:
    caught = [BatchItem(key=f"k{i}", input={"text": text}) for i, text in enumerate(items)]
    candidates = [
        prediction(n, text, model="fake/echo" if same_model else "other/model")
        for n, (text, same_model) in enumerate(made)
    ]
    found = {v.key: v for v in verdicts(caught, candidates, TARGET, by_key=False)}
    adopted = [v.prediction.id for v in found.values() if v.prediction is not None]
    assert len(adopted) == len(set(adopted))  # never one prediction for two items
    for item in caught:
        verdict = found[item.key]
        matching = [p for p in candidates if p.input == item.input and p.model == "fake/echo"]
        twins = sum(other.input == item.input for other in caught)
        if not matching:
            assert verdict.action == "create"  # provably never created
        elif twins > 1:
            assert verdict.action == "unresolved"  # cannot be told apart: reported
        else:
            assert verdict.action == "adopt"
            assert verdict.prediction in matching


@settings(max_examples=100, deadline=None)
@given(items=st.lists(texts, min_size=1, max_size=6), keyed=st.sets(st.integers(0, 5)))
def test_by_key_follows_the_webhook_key_whatever_the_input(
    items: list[str], keyed: set[int]
) -> None:
    caught = [BatchItem(key=f"k{i}", input={"text": text}) for i, text in enumerate(items)]
    candidates = [prediction(n, "changed", key=f"k{n}") for n in sorted(keyed)]
    for verdict in verdicts(caught, candidates, TARGET, by_key=True):
        number = int(verdict.key[1:])
        if number in keyed:
            assert verdict.action == "adopt"
            assert verdict.prediction is not None
            assert verdict.prediction.id == f"p{number}"
        else:
            assert verdict.action == "create"
