"""The fake's options, declared once: the keyword arguments of ``FakeReplicate``, the
fields of :class:`FakeOptions`, and the flags of ``replicate-async fake-server`` (and
``python -m replicate_async.testing``) all come from the fields below."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any, cast

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
    head_timeout: float = _opt(
        10.0, "seconds from a request head's first byte to its end before a 408"
    )
    max_json_depth: int = _opt(64, "deepest nesting accepted in a JSON body")
    prefer_wait_incomplete_status: int = _opt(201, "status of an unfinished Prefer: wait create")
    record_requests: bool = _opt(
        True, "keep the request log", flag="--no-record-requests", flag_help="keep no request log"
    )
    max_recorded_requests: int | None = _opt(None, "keep at most about this many requests")
    max_recorded_body: int = _opt(1024 * 1024, "bodies up to this size are kept in the log")
    inspect_endpoint: bool = _opt(False, "serve the log read-only at GET /_fake/requests")

    def __post_init__(self) -> None:
        for name, low, high in _NUMBERS:
            _check_number(name, getattr(self, name), low, high)
        for name in ("require_auth", "rate_limits_enabled", "record_requests", "inspect_endpoint"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, not {getattr(self, name)!r}")
        if self.prefer_wait_incomplete_status not in (201, 202):
            raise ValueError("prefer_wait_incomplete_status must be 201 or 202")
        for name in ("create_burst", "other_burst", "max_recorded_requests"):
            if getattr(self, name) is not None:
                _check_number(name, getattr(self, name), 1, _MANY)
        if not isinstance(self.seed, bool):
            _check_number("seed", self.seed, 0, 2**64 - 1)
        if not isinstance(self.token, str) or not _TOKEN.fullmatch(self.token):
            raise ValueError("token must be 1-512 printable ASCII characters, no spaces")
        if not isinstance(self.files_signing_secret, str) or not self.files_signing_secret:
            raise ValueError("files_signing_secret must be a non-empty string")
        if not _is_webhook_secret(self.webhook_secret):
            raise ValueError("webhook_secret must be 'whsec_' followed by base64 (a key)")

    @property
    def id_seed(self) -> int | None:
        """The id generator's seed, when ``seed`` is an int (not a bool)."""
        return None if isinstance(self.seed, bool) else self.seed

    @property
    def loads_seed_data(self) -> bool:
        """Whether the built-in models, collections... are loaded."""
        return self.seed is not False


_MANY = 10**9
_DAY = 86_400.0
#: (option, lowest, highest): ints stay ints; floats must be finite (NaN is refused).
_NUMBERS: tuple[tuple[str, float, float], ...] = (
    ("page_size", 1, 10_000),
    ("create_limit_per_minute", 1, _MANY),
    ("other_limit_per_minute", 1, _MANY),
    ("default_duration", 0.0, _DAY),
    ("slow_duration", 0.0, _DAY),
    ("training_duration", 0.0, _DAY),
    ("webhook_max_attempts", 1, 100),
    ("webhook_retry_delay", 0.0, 3600.0),
    ("webhook_throttle", 0.0, 3600.0),
    ("max_file_size", 1, 2**40),
    ("body_timeout", 0.001, _DAY),
    ("head_timeout", 0.001, _DAY),
    ("max_json_depth", 1, 10_000),
    ("max_recorded_body", 0, 2**40),
)
_INTS = frozenset(
    {"page_size", "create_limit_per_minute", "other_limit_per_minute", "webhook_max_attempts"}
    | {"max_file_size", "max_json_depth", "max_recorded_body", "create_burst", "other_burst"}
    | {"max_recorded_requests", "seed"}
)
_TOKEN = re.compile(r"[!-~]{1,512}")


def _check_number(name: str, value: Any, low: float, high: float) -> None:
    """A clear ``ValueError`` unless ``value`` is a number in ``[low, high]`` (an int
    where the option counts something; never a bool, never NaN or infinite)."""
    kinds: tuple[type, ...] = (int,) if name in _INTS else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        wanted = "an integer" if name in _INTS else "a number"
        raise ValueError(f"{name} must be {wanted}, not {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{name} must be finite, not {value!r}")
    if not low <= cast(float, value) <= high:
        raise ValueError(f"{name} must be between {low} and {high}, not {value!r}")


def _is_webhook_secret(secret: Any) -> bool:
    if not isinstance(secret, str) or not secret.startswith("whsec_"):
        return False
    try:
        return bool(base64.b64decode(secret.removeprefix("whsec_"), validate=True))
    except (binascii.Error, ValueError):
        return False


def option_fields() -> tuple[dataclasses.Field[Any], ...]:
    """The declared options, in order (for command-line parsers)."""
    return dataclasses.fields(FakeOptions)
