"""replicate_async: an asyncio-native client for Replicate's HTTP API.

Public names are imported on first use (PEP 562), so ``import replicate_async`` and the
command line's ``--help`` do not load aiohttp until something needs it.
"""

import typing

if typing.TYPE_CHECKING:  # exactly the names of _EXPORTS (tests/unit/test_exports.py)
    from ._client import AsyncReplicate as AsyncReplicate  # noqa: I001 - grouped by module
    from ._config import (
        ClientConfig as ClientConfig,
        PollPolicy as PollPolicy,
        RetryPolicy as RetryPolicy,
        Timeouts as Timeouts,
    )
    from ._workflows.file_outputs import FileOutput as FileOutput
    from ._core.hooks import (
        Hooks as Hooks,
        RequestEvent as RequestEvent,
        ResponseEvent as ResponseEvent,
        RetryEvent as RetryEvent,
        ThrottleEvent as ThrottleEvent,
    )
    from ._workflows.inflight import RunObserver as RunObserver
    from ._literals import WebhookEvent as WebhookEvent
    from ._core.options import (
        RequestOptions as RequestOptions,
        RequestOptionsDict as RequestOptionsDict,
    )
    from ._core.raw import RawResponse as RawResponse, RawStream as RawStream
    from ._workflows.run_many import Progress as Progress, RunResult as RunResult
    from ._core.sse import ServerSentEvent as ServerSentEvent
    from ._core.streaming import StreamedResponse as StreamedResponse
    from ._core.throttle import RateLimiter as RateLimiter, Throttle as Throttle
    from ._workflows.use import (
        ModelFunction as ModelFunction,
        ModelSchema as ModelSchema,
        OutputStream as OutputStream,
        RunOptions as RunOptions,
        SchemaCache as SchemaCache,
    )
    from ._waiter import WebhookWaiter as WebhookWaiter
    from .exceptions import (
        APIConnectionError as APIConnectionError,
        APIError as APIError,
        APIResponseValidationError as APIResponseValidationError,
        APIStatusError as APIStatusError,
        APITimeoutError as APITimeoutError,
        AuthenticationError as AuthenticationError,
        BadRequestError as BadRequestError,
        ClientClosedError as ClientClosedError,
        ConflictError as ConflictError,
        DataURLError as DataURLError,
        InputProblem as InputProblem,
        InputValidationError as InputValidationError,
        InternalServerError as InternalServerError,
        InvalidArgumentError as InvalidArgumentError,
        MissingTokenError as MissingTokenError,
        ModelError as ModelError,
        NotFoundError as NotFoundError,
        PaginationError as PaginationError,
        PayloadTooLargeError as PayloadTooLargeError,
        PaymentRequiredError as PaymentRequiredError,
        PermissionDeniedError as PermissionDeniedError,
        PoolTimeoutError as PoolTimeoutError,
        PredictionAbortedError as PredictionAbortedError,
        PredictionCanceledError as PredictionCanceledError,
        PredictionError as PredictionError,
        PredictionTimeoutError as PredictionTimeoutError,
        RateLimitError as RateLimitError,
        ReplicateError as ReplicateError,
        RequestMayHaveSucceededError as RequestMayHaveSucceededError,
        RequestMayHaveSucceededTimeoutError as RequestMayHaveSucceededTimeoutError,
        RunAbandonedError as RunAbandonedError,
        SchemaError as SchemaError,
        StreamError as StreamError,
        UnprocessableEntityError as UnprocessableEntityError,
        WebhookVerificationError as WebhookVerificationError,
    )
    from .models import (
        TERMINAL_STATUSES as TERMINAL_STATUSES,
        Account as Account,
        Collection as Collection,
        Deployment as Deployment,
        File as File,
        Hardware as Hardware,
        Model as Model,
        Page as Page,
        Prediction as Prediction,
        SearchResult as SearchResult,
        Status as Status,
        Training as Training,
        Version as Version,
        WebhookSecret as WebhookSecret,
    )
    from .pagination import AsyncPaginator as AsyncPaginator

from ._version import __version__

#: Every public name and the module it comes from, in ``__all__``'s order: the one list
#: (``__getattr__`` imports a name's module on its first use).
_EXPORTS: dict[str, str] = {
    "TERMINAL_STATUSES": ".models",
    "APIConnectionError": ".exceptions",
    "APIError": ".exceptions",
    "APIResponseValidationError": ".exceptions",
    "APIStatusError": ".exceptions",
    "APITimeoutError": ".exceptions",
    "Account": ".models",
    "AsyncPaginator": ".pagination",
    "AsyncReplicate": "._client",
    "AuthenticationError": ".exceptions",
    "BadRequestError": ".exceptions",
    "ClientClosedError": ".exceptions",
    "ClientConfig": "._config",
    "Collection": ".models",
    "ConflictError": ".exceptions",
    "DataURLError": ".exceptions",
    "Deployment": ".models",
    "File": ".models",
    "FileOutput": "._workflows.file_outputs",
    "Hardware": ".models",
    "Hooks": "._core.hooks",
    "InputProblem": ".exceptions",
    "InputValidationError": ".exceptions",
    "InternalServerError": ".exceptions",
    "InvalidArgumentError": ".exceptions",
    "MissingTokenError": ".exceptions",
    "Model": ".models",
    "ModelError": ".exceptions",
    "ModelFunction": "._workflows.use",
    "ModelSchema": "._workflows.use",
    "NotFoundError": ".exceptions",
    "OutputStream": "._workflows.use",
    "Page": ".models",
    "PaginationError": ".exceptions",
    "PayloadTooLargeError": ".exceptions",
    "PaymentRequiredError": ".exceptions",
    "PermissionDeniedError": ".exceptions",
    "PollPolicy": "._config",
    "PoolTimeoutError": ".exceptions",
    "Prediction": ".models",
    "PredictionAbortedError": ".exceptions",
    "PredictionCanceledError": ".exceptions",
    "PredictionError": ".exceptions",
    "PredictionTimeoutError": ".exceptions",
    "Progress": "._workflows.run_many",
    "RateLimitError": ".exceptions",
    "RateLimiter": "._core.throttle",
    "RawResponse": "._core.raw",
    "RawStream": "._core.raw",
    "ReplicateError": ".exceptions",
    "RequestEvent": "._core.hooks",
    "RequestMayHaveSucceededError": ".exceptions",
    "RequestMayHaveSucceededTimeoutError": ".exceptions",
    "RequestOptions": "._core.options",
    "RequestOptionsDict": "._core.options",
    "ResponseEvent": "._core.hooks",
    "RetryEvent": "._core.hooks",
    "RetryPolicy": "._config",
    "RunAbandonedError": ".exceptions",
    "RunObserver": "._workflows.inflight",
    "RunOptions": "._workflows.use",
    "RunResult": "._workflows.run_many",
    "SchemaCache": "._workflows.use",
    "SchemaError": ".exceptions",
    "SearchResult": ".models",
    "ServerSentEvent": "._core.sse",
    "Status": ".models",
    "StreamError": ".exceptions",
    "StreamedResponse": "._core.streaming",
    "Throttle": "._core.throttle",
    "ThrottleEvent": "._core.hooks",
    "Timeouts": "._config",
    "Training": ".models",
    "UnprocessableEntityError": ".exceptions",
    "Version": ".models",
    "WebhookEvent": "._literals",
    "WebhookSecret": ".models",
    "WebhookVerificationError": ".exceptions",
    "WebhookWaiter": "._waiter",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str) -> typing.Any:
    """Import a public name from its module on first use, then keep it here."""
    source = _EXPORTS.get(name)
    if source is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(source, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
