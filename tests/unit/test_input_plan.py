"""The input plan a model function checks scalar inputs with agrees with the whole check.

``ModelSchema.inspect`` answers "no problem" from :class:`InputPlan` when the plan is
sure, and runs the whole check otherwise: every input the plan passes must be one the
whole check finds no problem with (and does not skip), on every recorded schema and on a
schema using every rule the plan reads.
"""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from replicate_async._checks.schema import MAX_STEPS, InputCheck, InputPlan, inspect_input
from replicate_async._workflows.use import ModelSchema
from tests.helpers import example

RULES: dict[str, Any] = {
    "components": {
        "schemas": {
            "Color": {"type": "string", "enum": ["red", "green", "1"]},
            "Input": {
                "type": "object",
                "required": ["n"],
                "additionalProperties": False,
                "properties": {
                    "n": {"type": "integer", "minimum": 1, "maximum": 10},
                    "x": {"type": "number", "exclusiveMinimum": 0, "multipleOf": 0.1},
                    "s": {"type": "string", "minLength": 2, "maxLength": 4},
                    "u": {"type": "string", "format": "uri"},
                    "b": {"type": "boolean"},
                    "maybe": {"type": "integer", "nullable": True},
                    "color": {"allOf": [{"$ref": "#/components/schemas/Color"}]},
                    "big": {"enum": [*range(100), 1.5, "a", True, None]},
                    "p": {"type": "string", "pattern": "^a+$"},
                    "any": {},
                },
            },
        }
    }
}

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 120),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.1, 0.3, 2.0, 1.0, 1e300]),
    st.text(max_size=6),
    st.sampled_from(["red", "green", "1", "a", "https://x.y/z", "x:", "no uri", "\\\\h"]),
)
NAMES = st.sampled_from([*RULES["components"]["schemas"]["Input"]["properties"], "extra"])


def _agrees(schema: dict[str, Any], value: dict[str, Any]) -> None:
    plan = InputPlan.of(schema)
    assert plan is not None
    whole = inspect_input(schema, value)
    if plan.valid(value):
        assert whole == InputCheck([]), value
    assert ModelSchema("o/m", None, schema, "o/m").inspect(value) == whole


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(NAMES, SCALARS, max_size=6))
def test_the_plan_passes_only_what_the_whole_check_passes(value: dict[str, Any]) -> None:
    _agrees(RULES, value)


@settings(max_examples=200, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "prompt": st.one_of(st.text(max_size=5), st.integers()),
            "width": st.one_of(st.integers(0, 2048), st.floats(allow_nan=False)),
            "num_outputs": st.integers(-1, 6),
            "scheduler": st.sampled_from(["K_EULER", "DDIM", "nope", 1]),
            "refine": st.sampled_from(["no_refiner", "expert_ensemble_refiner", None]),
            "guidance_scale": st.floats(-1, 60),
            "image": st.sampled_from(["https://x/a.png", "a.png"]),
        },
    )
)
def test_the_plan_agrees_on_the_recorded_sdxl_schema(value: dict[str, Any]) -> None:
    _agrees(example("version-get-sdxl")["openapi_schema"], value)


def test_the_plan_passes_a_valid_input_and_defers_everything_else() -> None:
    plan = InputPlan.of(RULES)
    assert plan is not None
    assert plan.valid({"n": 3, "x": 0.3, "color": "red", "maybe": None, "big": 1.0, "any": 1})
    # A pattern, a container, a file-like value, a missing required input, an unknown
    # input under additionalProperties: false, NaN: the whole check decides.
    for value in (
        {"n": 3, "p": "aaa"},
        {"n": 3, "s": ["ab"]},
        {"n": 3, "extra": 1},
        {},
        {"n": 3, "x": math.nan},
        {"n": 3.0},  # an integral float is an integer: the whole check says so
    ):
        assert not plan.valid(value) or inspect_input(RULES, value).problems == []
    assert not plan.valid({"n": 3, "s": ["ab"]})
    assert not plan.valid({"n": 3, "p": "aaa"})


def test_an_input_past_the_step_budget_is_left_to_the_whole_check() -> None:
    # 250 inputs, each with an enum of its own of 2,000 choices: indexing them costs the
    # whole check 250 x 251 steps, past MAX_STEPS, so it is skipped; the plan must agree.
    props = {f"k{i}": {"enum": [f"c{j}" for j in range(2000)]} for i in range(250)}
    schema: dict[str, Any] = {"type": "object", "properties": props}
    value = {f"k{i}": "c0" for i in range(250)}
    assert MAX_STEPS < 250 * 251
    plan = InputPlan.of(schema)
    assert plan is not None
    assert not plan.valid(value)
    whole = inspect_input(schema, value)
    assert whole.skipped is not None
    assert ModelSchema("o/m", None, schema, "o/m").inspect(value) == whole
    # 100 x 253 steps: within the step budget. (The whole check may still stop on its
    # CPU clock while indexing 200,000 choices on a slow machine; the plan has them
    # indexed already, and checks.)
    fewer = {f"k{i}": "c0" for i in range(100)}
    assert plan.valid(fewer)
    assert inspect_input(schema, fewer).problems == []
