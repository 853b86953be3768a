"""A model as an async function: :meth:`AsyncReplicate.use`.

``fn = client.use("owner/name")`` looks nothing up yet. The first call fetches the model's
version and its OpenAPI schema once (concurrent first calls share one request; a failed
fetch is retried by the next call), and every call after that reuses it: the input is
checked against the schema before anything is sent, then the model runs through
:meth:`AsyncReplicate.run` (same deadline and cancellation), and the output is shaped by
the schema (a language model's tokens come back as one text).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from typing import Any

import attrs

from .._checks import numbers as check_numbers
from .._checks import url as check_url
from .._checks.schema import (
    InputCheck,
    InputPlan,
    input_order,
    input_schema,
    inspect_input,
    joins_output,
    output_schema,
    required_inputs,
    schema_problem,
)
from .._clock import Clock, deadline
from ..exceptions import (
    InputProblem,
    InputValidationError,
    InvalidArgumentError,
    PredictionTimeoutError,
)
from ..models import Prediction, Version
from .file_outputs import FileOutput
from .runner import Runner

logger = logging.getLogger("replicate_async")

__all__ = [
    "RUN_OPTIONS",
    "ModelFunction",
    "ModelSchema",
    "OutputStream",
    "RunOptions",
    "SchemaCache",
]


class OutputStream:
    """The outputs of :meth:`ModelFunction.stream`, as they are produced.

    Iterate it; or use it as a context manager (``async with fn.stream(...) as outputs``)
    to have the prediction canceled on the server the moment you leave.
    """

    __slots__ = ("_gen",)

    def __init__(self, gen: AsyncGenerator[str | FileOutput, None]) -> None:
        self._gen = gen

    def __aiter__(self) -> OutputStream:
        return self

    async def __anext__(self) -> str | FileOutput:
        return await self._gen.__anext__()

    async def aclose(self) -> None:
        """Leave the stream; an unfinished prediction is canceled on the server."""
        await self._gen.aclose()

    async def __aenter__(self) -> OutputStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


#: The options of :meth:`AsyncReplicate.run` a model function passes on (``create``: some).
_CREATE_OPTIONS = ("cancel_after", "webhook", "webhook_events_filter")
RUN_OPTIONS = ("timeout", "wait", "use_file_output", "on_created", *_CREATE_OPTIONS)


def _run_options(value: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(value) - set(RUN_OPTIONS))
    if unknown:
        raise TypeError(f"unknown run option(s) {', '.join(unknown)}; known: {RUN_OPTIONS}")
    check_numbers.seconds(value.get("timeout"), "timeout")
    return dict(value)


@attrs.frozen
class RunOptions:
    """How a model function's calls run.

    ``run`` holds the :meth:`AsyncReplicate.run` options given (``timeout``, ``wait``,
    ``cancel_after``, ``use_file_output``, ``webhook``, ``webhook_events_filter``,
    ``on_created``: it gets each call's prediction once created, streams too); the
    others keep ``run``'s defaults. ``check_input=False`` sends inputs unchecked.
    """

    run: Mapping[str, Any] = attrs.field(factory=dict, converter=_run_options)
    check_input: bool = True


@attrs.frozen
class ModelSchema:
    """A model version's schema, as a :class:`ModelFunction` uses it.

    ``model`` is ``"owner/name"``; ``version`` the version id (``None`` when the API shows
    none); ``openapi_schema`` the version's whole OpenAPI document; ``run_ref`` what runs
    (``"owner/name"`` for an official model, else ``"owner/name:version"``; ``None`` on a
    deployment); ``deployment`` the deployment it runs on, if any.

    ``input_check_skipped`` says why inputs are not checked before they are sent (e.g.
    ``"input checks skipped: too complex (...)"``: the schema is beyond the SDK's walking
    budgets; the API still checks them), or is ``None``.
    """

    model: str
    version: str | None
    openapi_schema: dict[str, Any] = attrs.field(repr=False, hash=False)
    run_ref: str | None
    deployment: str | None = None
    input_check_skipped: str | None = attrs.field(init=False, eq=False)
    #: Made on first use from ``openapi_schema`` (fetched once and kept): the plan of its
    #: inputs, and whether outputs are joined (see :meth:`shape`).
    _plan: tuple[InputPlan | None] | None = attrs.field(
        init=False, eq=False, repr=False, default=None
    )
    _joins: bool | None = attrs.field(init=False, eq=False, repr=False, default=None)

    @input_check_skipped.default
    def _skipped(self) -> str | None:
        return schema_problem(self.openapi_schema)

    @property
    def input(self) -> dict[str, Any]:
        """The ``Input`` object schema (``{}`` when the version has none)."""
        return dict(input_schema(self.openapi_schema) or {})

    @property
    def output(self) -> dict[str, Any] | None:
        """The ``Output`` schema, if any."""
        found = output_schema(self.openapi_schema)
        return dict(found) if found is not None else None

    @property
    def input_names(self) -> list[str]:
        """The input names in the model's display order (``x-order``)."""
        return input_order(self.openapi_schema)

    @property
    def required(self) -> list[str]:
        """The inputs that must be given."""
        return required_inputs(self.openapi_schema)

    def check(self, input: Mapping[str, Any]) -> list[InputProblem]:
        """Every problem of ``input`` against the schema (an empty list: it is valid, or
        could not be checked: see :meth:`inspect`)."""
        return self.inspect(input).problems

    def inspect(self, input: Mapping[str, Any]) -> InputCheck:
        """Check ``input``: the problems, how many were left out, and whether (and why) the
        check was skipped."""
        if self.input_check_skipped is not None:
            return InputCheck([], skipped=self.input_check_skipped)
        made = self._plan
        if made is None:  # once: None inside for a schema the plan cannot describe
            made = (InputPlan.of(self.openapi_schema),)
            object.__setattr__(self, "_plan", made)
        plan = made[0]
        if plan is not None and plan.valid(input):
            return InputCheck([])
        return inspect_input(self.openapi_schema, input)

    def shape(self, output: Any) -> Any:
        """A final output as the model presents it: a language model's list of tokens
        (``x-cog-array-display: concatenate``) joined into one text, anything else as is."""
        joins = self._joins
        if joins is None:
            joins = joins_output(output_schema(self.openapi_schema), document=self.openapi_schema)
            object.__setattr__(self, "_joins", joins)
        if joins and isinstance(output, list) and all(isinstance(i, str) for i in output):
            return "".join(output)
        return output


def _of_version(model: str, version: Version | None, **where: Any) -> ModelSchema:
    schema = dict(version.openapi_schema or {}) if version is not None else {}
    found = ModelSchema(model, version.id if version else None, schema, **where)
    if found.input_check_skipped is not None:  # once: the schema is fetched once and kept
        logger.warning("%s: %s; the API checks inputs itself", model, found.input_check_skipped)
    return found


class SchemaCache:
    """A model's schema, fetched once and shared: by concurrent first calls (one request
    in flight), by :meth:`ModelFunction.with_options` copies, and by the functions of
    several clients that :meth:`ModelFunction.sharing` it (a generated module keeps one).

    A failed fetch is not kept: the next call tries again. It holds no client.
    """

    __slots__ = ("_task", "_value")

    def __init__(self) -> None:
        self._value: ModelSchema | None = None
        self._task: asyncio.Future[ModelSchema] | None = None

    @property
    def value(self) -> ModelSchema | None:
        """The schema, once fetched."""
        return self._value

    async def get(self, fetch: Callable[[], Awaitable[ModelSchema]]) -> ModelSchema:
        """The schema; ``fetch`` runs only if none is kept or in flight (on this loop)."""
        if self._value is not None:
            return self._value
        task = self._task
        loop = asyncio.get_running_loop()
        if task is None or task.get_loop() is not loop or (task.done() and not _ok(task)):
            task = self._task = asyncio.ensure_future(fetch())
            task.add_done_callback(_ok)  # a failure nobody waits for any more is not logged
        # Shielded: a cancelled caller never cancels the fetch the others are waiting on.
        value = await asyncio.shield(task)
        self._value = value
        self._task = None
        return value


def _ok(task: asyncio.Future[Any]) -> bool:
    return not task.cancelled() and task.exception() is None


class ModelFunction:
    """A model as an async function (see :meth:`AsyncReplicate.use`).

    - ``await fn(**input)``: run it and return the output (shaped by the schema).
    - ``await fn.create(**input)``: create the prediction and return it at once.
    - ``fn.stream(**input)``: an async iterator of its outputs as they are produced.
    - ``await fn.schema()``: the version's input and output schema (:class:`ModelSchema`).
    - ``fn.with_options(timeout=...)``: the same function (and schema) with other options.

    Inputs are checked against the schema before anything is sent: a bad one raises
    :class:`InputValidationError` listing every problem.
    """

    def __init__(
        self,
        runner: Runner,
        clock: Clock,
        ref: str | None,
        deployment: str | None,
        options: RunOptions,
        cache: SchemaCache | None = None,
    ) -> None:
        if (ref is None) == (deployment is None):
            raise InvalidArgumentError("use() needs exactly one of a model ref or deployment=")
        if deployment is not None:
            check_url.model_ref(deployment, "deployment")
            model, version = deployment, None
        else:
            owner, name, version = check_url.split_version_ref(ref)
            model = f"{owner}/{name}"
        self._runner = runner
        self._clock = clock
        self._ref = ref
        self._model = model
        self._version = version
        self._deployment = deployment
        self._options = options
        self._cache = cache or SchemaCache()

    @property
    def ref(self) -> str:
        """What this function runs: the ref or deployment it was made from."""
        return self._ref or f"deployment {self._deployment}"

    @property
    def options(self) -> RunOptions:
        """The options every call runs with."""
        return self._options

    def with_options(self, *, check_input: bool | None = None, **run: Any) -> ModelFunction:
        """This function with other options (``timeout=``, ``check_input=``...); the
        schema is shared, not fetched again."""
        options = RunOptions(
            {**self._options.run, **run},
            self._options.check_input if check_input is None else check_input,
        )
        return ModelFunction(
            self._runner, self._clock, self._ref, self._deployment, options, self._cache
        )

    def sharing(self, cache: SchemaCache) -> ModelFunction:
        """This function, keeping its schema in ``cache`` (which others may share)."""
        return ModelFunction(
            self._runner, self._clock, self._ref, self._deployment, self._options, cache
        )

    async def schema(self) -> ModelSchema:
        """The version's schema, fetched on first use and kept."""
        return await self._cache.get(self._fetch)

    async def _fetch(self) -> ModelSchema:
        client = self._runner
        if self._deployment is not None:
            release = (await client.deployments.get(self._deployment)).current_release
            if release is None or not release.model or not release.version:
                return ModelSchema(self._deployment, None, {}, None, self._deployment)
            version = await client.models.versions.get(release.model, release.version)
            return _of_version(release.model, version, run_ref=None, deployment=self._deployment)
        if self._version is not None:
            version = await client.models.versions.get(self._model, self._version)
            return _of_version(self._model, version, run_ref=f"{self._model}:{version.id}")
        model = await client.models.get(self._model)
        latest = model.latest_version
        # Official models run by name; any other runs pinned to the version just checked.
        pinned = latest is not None and not model.is_official
        run_ref = f"{self._model}:{latest.id}" if pinned and latest else self._model
        return _of_version(self._model, latest, run_ref=run_ref)

    def _check(self, schema: ModelSchema, input: Mapping[str, Any]) -> None:
        if not self._options.check_input:
            return
        found = schema.inspect(input)
        if found.skipped is not None and schema.input_check_skipped is None:
            logger.warning("%s: %s; the API checks it itself", self.ref, found.skipped)
        if found.problems:
            count = len(found.problems) + found.omitted
            raise InputValidationError(
                f"{count} problem(s) with the input of {self.ref}:",
                found.problems,
                omitted=found.omitted,
            )

    async def __call__(self, /, **input: Any) -> Any:
        """Run the model on ``input`` and return its output (see :meth:`AsyncReplicate.run`).

        The ``timeout`` option is one deadline for the whole call, the first call's schema
        fetch included.
        """
        options = dict(self._options.run)
        timeout = check_numbers.seconds(options.pop("timeout", None), "timeout")
        schema = self._cache.value
        if schema is None:  # the first call: the fetch counts against the deadline
            schema, timeout = await self._first_schema(timeout)
        self._check(schema, input)
        use_file_output = options.pop("use_file_output", False)
        runner = self._runner
        prediction = await runner.run(
            schema.run_ref,
            input=input,
            deployment=self._deployment,
            timeout=timeout,
            **options,
        )
        return schema.shape(runner.output(prediction, use_file_output))

    async def _first_schema(self, timeout: float | None) -> tuple[ModelSchema, float | None]:
        """The schema fetched within ``timeout``, and what is left of it to run."""
        started = self._clock.monotonic()
        try:
            async with deadline(self._clock, timeout) as scope:
                schema = await self.schema()
        except TimeoutError:
            if not scope.expired():
                raise
            raise PredictionTimeoutError(
                f"the model's schema was not fetched within {timeout}s; nothing was run", None
            ) from None
        if timeout is not None:
            timeout = max(timeout - (self._clock.monotonic() - started), 0.001)
        return schema, timeout

    async def create(self, /, **input: Any) -> Prediction:
        """Check ``input`` and create the prediction; return it without waiting.

        The ``cancel_after``, ``webhook`` and ``webhook_events_filter`` options apply.
        """
        schema = await self.schema()
        self._check(schema, input)
        options = self._options.run
        extra = {key: options[key] for key in _CREATE_OPTIONS if key in options}
        create = self._runner.creator(
            schema.run_ref, deployment=self._deployment, input=input, **extra
        )
        return await create()

    def stream(self, /, **input: Any) -> OutputStream:
        """Check ``input``, run the model and yield its outputs as they are produced
        (text fragments, or :class:`FileOutput` for file streams). Nothing is sent until
        it is iterated; leaving early cancels the prediction on the server."""
        return OutputStream(self._stream(input))

    async def _stream(self, input: Mapping[str, Any]) -> AsyncGenerator[str | FileOutput, None]:
        schema = await self.schema()
        self._check(schema, input)
        outputs = self._runner.stream(
            schema.run_ref,
            input=input,
            deployment=self._deployment,
            outputs_only=True,
            on_created=self._options.run.get("on_created"),
        )
        # Closing the inner stream at once is what cancels the prediction on the server.
        async with contextlib.aclosing(outputs):
            async for item in outputs:
                yield item

    def __repr__(self) -> str:
        return f"ModelFunction({self.ref!r})"
