"""replicate_async: an asyncio-native client for Replicate's HTTP API.

Public names are imported on first use (PEP 562), so ``import replicate_async`` and the
command line's ``--help`` do not load aiohttp until something needs it.
"""

import typing

if typing.TYPE_CHECKING:
    from ._client import AsyncReplicate
    from ._config import ClientConfig, PollPolicy, RetryPolicy, Timeouts
    from ._files import FileOutput
    from ._hooks import Hooks, RequestEvent, ResponseEvent, RetryEvent, ThrottleEvent
    from ._inflight import RunObserver
    from ._literals import WebhookEvent
    from ._options import RequestOptions, RequestOptionsDict
    from ._raw import RawResponse, RawStream
    from ._run_many import Progress, RunResult
    from ._sse import ServerSentEvent
    from ._streaming import StreamedResponse
    from ._throttle import RateLimiter, Throttle
    from ._use import ModelFunction, ModelSchema, OutputStream, RunOptions, SchemaCache
    from ._webhook_wait import WebhookWaiter
    from .exceptions import (
        APIConnectionError,
        APIError,
        APIResponseValidationError,
        APIStatusError,
        APITimeoutError,
        AuthenticationError,
        BadRequestError,
        ClientClosedError,
        ConflictError,
        DataURLError,
        InputProblem,
        InputValidationError,
        InternalServerError,
        InvalidArgumentError,
        MissingTokenError,
        ModelError,
        NotFoundError,
        PaginationError,
        PayloadTooLargeError,
        PaymentRequiredError,
        PermissionDeniedError,
        PoolTimeoutError,
        PredictionAbortedError,
        PredictionCanceledError,
        PredictionError,
        PredictionTimeoutError,
        RateLimitError,
        ReplicateError,
        RequestMayHaveSucceededError,
        RequestMayHaveSucceededTimeoutError,
        RunAbandonedError,
        SchemaError,
        StreamError,
        UnprocessableEntityError,
        WebhookVerificationError,
    )
    from .models import (
        TERMINAL_STATUSES,
        Account,
        Collection,
        Deployment,
        File,
        Hardware,
        Model,
        Page,
        Prediction,
        SearchResult,
        Status,
        Training,
        Version,
        WebhookSecret,
    )
    from .pagination import AsyncPaginator

from ._version import __version__

__all__ = [
    "TERMINAL_STATUSES",
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "Account",
    "AsyncPaginator",
    "AsyncReplicate",
    "AuthenticationError",
    "BadRequestError",
    "ClientClosedError",
    "ClientConfig",
    "Collection",
    "ConflictError",
    "DataURLError",
    "Deployment",
    "File",
    "FileOutput",
    "Hardware",
    "Hooks",
    "InputProblem",
    "InputValidationError",
    "InternalServerError",
    "InvalidArgumentError",
    "MissingTokenError",
    "Model",
    "ModelError",
    "ModelFunction",
    "ModelSchema",
    "NotFoundError",
    "OutputStream",
    "Page",
    "PaginationError",
    "PayloadTooLargeError",
    "PaymentRequiredError",
    "PermissionDeniedError",
    "PollPolicy",
    "PoolTimeoutError",
    "Prediction",
    "PredictionAbortedError",
    "PredictionCanceledError",
    "PredictionError",
    "PredictionTimeoutError",
    "Progress",
    "RateLimitError",
    "RateLimiter",
    "RawResponse",
    "RawStream",
    "ReplicateError",
    "RequestEvent",
    "RequestMayHaveSucceededError",
    "RequestMayHaveSucceededTimeoutError",
    "RequestOptions",
    "RequestOptionsDict",
    "ResponseEvent",
    "RetryEvent",
    "RetryPolicy",
    "RunAbandonedError",
    "RunObserver",
    "RunOptions",
    "RunResult",
    "SchemaCache",
    "SchemaError",
    "SearchResult",
    "ServerSentEvent",
    "Status",
    "StreamError",
    "StreamedResponse",
    "Throttle",
    "ThrottleEvent",
    "Timeouts",
    "Training",
    "UnprocessableEntityError",
    "Version",
    "WebhookEvent",
    "WebhookSecret",
    "WebhookVerificationError",
    "WebhookWaiter",
    "__version__",
]

#: The modules the public names come from, lightest first (see ``__getattr__``).
_SOURCES = (
    ".exceptions",
    ".models",
    "._config",
    "._literals",
    "._options",
    "._raw",
    "._hooks",
    "._inflight",
    "._throttle",
    ".pagination",
    "._sse",
    "._streaming",
    "._files",
    "._run_many",
    "._webhook_wait",
    "._use",
    "._client",
)


def __getattr__(name: str) -> typing.Any:
    """Import a public name from its module on first use, then keep it here."""
    if name in __all__:
        import importlib

        for source in _SOURCES:
            module = importlib.import_module(source, __name__)
            if name in vars(module):
                value = vars(module)[name]
                globals()[name] = value
                return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
