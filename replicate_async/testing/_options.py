"""The fake's options, declared once: the keyword arguments of ``FakeReplicate``, the
fields of :class:`FakeOptions`, and the flags of ``replicate-async fake-server`` (and
``python -m replicate_async.testing``) all come from the fields below."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_TOKEN", "DEFAULT_WEBHOOK_SECRET", "FakeOptions", "option_fields"]

DEFAULT_TOKEN = "r8_fake_token_for_tests"
DEFAULT_WEBHOOK_SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"


def _opt(default: Any, help: str, *, flag: str | None = None, flag_help: str = "") -> Any:
    """A field with its help, and its command-line flag when not ``--field-name`` (with
    the flag's own help when the flag inverts the option)."""
    metadata = {"help": help, "flag": flag, "flag_help": flag_help or help}
    return dataclasses.field(default=default, metadata=metadata)


@dataclass(frozen=True, slots=True, kw_only=True)
class FakeOptions:
    """Server options: every keyword argument of :class:`FakeReplicate` but ``host``,
    ``port`` and ``clock``. Each is also a ``fake-server`` command-line flag."""

    token: str = _opt(DEFAULT_TOKEN, "the one accepted API token")
    require_auth: bool = _opt(
        True,
        "reject requests without the token",
        flag="--no-auth",
        flag_help="accept requests without the token",
    )
    page_size: int = _opt(100, "items per page on every list")
    rate_limits_enabled: bool = _opt(
        False, "answer 429 when a bucket is empty", flag="--rate-limits"
    )
    create_limit_per_minute: int = _opt(600, "prediction creates allowed a minute")
    other_limit_per_minute: int = _opt(3000, "other requests allowed a minute")
    create_burst: int | None = _opt(None, "tokens the create bucket holds (default: a minute's)")
    other_burst: int | None = _opt(None, "tokens the other bucket holds (default: a minute's)")
    seed: bool | int = _opt(
        True,
        "False: start empty; True: built-in models...; an int: built-in data and "
        "reproducible ids drawn from a generator seeded with it",
        flag_help="make every id reproducible (the built-in data is loaded too)",
    )
    default_duration: float = _opt(0.0, "seconds a run spends processing")
    slow_duration: float = _opt(5.0, "seconds a fake/slow run spends processing")
    training_duration: float = _opt(0.0, "seconds a training spends processing")
    webhook_secret: str = _opt(DEFAULT_WEBHOOK_SECRET, "the webhook signing secret")
    webhook_max_attempts: int = _opt(3, "delivery attempts of a terminal webhook")
    webhook_retry_delay: float = _opt(0.05, "seconds before the first webhook retry (doubling)")
    webhook_throttle: float = _opt(0.5, "seconds between output/logs webhooks (0: send all)")
    files_signing_secret: str = _opt("fake-files-signing-secret", "key of download signatures")
    max_file_size: int = _opt(100 * 1024 * 1024, "largest upload, in bytes")
    body_timeout: float = _opt(10.0, "seconds to wait for a request body before a 408")
    max_json_depth: int = _opt(64, "deepest nesting accepted in a JSON body")
    prefer_wait_incomplete_status: int = _opt(201, "status of an unfinished Prefer: wait create")
    record_requests: bool = _opt(
        True, "keep the request log", flag="--no-record-requests", flag_help="keep no request log"
    )
    max_recorded_requests: int | None = _opt(None, "keep at most about this many requests")
    max_recorded_body: int = _opt(1024 * 1024, "bodies up to this size are kept in the log")
    inspect_endpoint: bool = _opt(False, "serve the log read-only at GET /_fake/requests")

    def __post_init__(self) -> None:
        if self.page_size < 1:
            raise ValueError("page_size must be at least 1")
        if self.prefer_wait_incomplete_status not in (201, 202):
            raise ValueError("prefer_wait_incomplete_status must be 201 or 202")
        for name in ("body_timeout", "max_json_depth", "max_file_size"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")

    @property
    def id_seed(self) -> int | None:
        """The id generator's seed, when ``seed`` is an int (not a bool)."""
        return None if isinstance(self.seed, bool) else self.seed

    @property
    def loads_seed_data(self) -> bool:
        """Whether the built-in models, collections... are loaded."""
        return self.seed is not False


def option_fields() -> tuple[dataclasses.Field[Any], ...]:
    """The declared options, in order (for command-line parsers)."""
    return dataclasses.fields(FakeOptions)
