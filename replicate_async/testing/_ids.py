"""Ids for everything the fake creates: random by default, reproducible with a seed."""

from __future__ import annotations

import os
import random

__all__ = ["IdFactory"]

_ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford-ish base32, lower case


class IdFactory:
    """Draws ids from ``os.urandom``, or from ``random.Random(seed)`` when seeded, so two
    fakes built with the same seed hand out the same ids in the same order."""

    def __init__(self, seed: int | None = None) -> None:
        self._rng = random.Random(seed) if seed is not None else None

    def bits(self, count: int) -> int:
        """``count`` random bits."""
        if self._rng is not None:
            return self._rng.getrandbits(count)
        return int.from_bytes(os.urandom((count + 7) // 8), "big") >> (-count % 8)

    def new_id(self, length: int = 26) -> str:
        """An opaque, lower-case, base32-looking id like Replicate's prediction ids."""
        raw = self.bits(5 * length)
        chars = []
        for _ in range(length):
            raw, rem = divmod(raw, 32)
            chars.append(_ID_ALPHABET[rem])
        return "".join(chars)

    def hex(self, nbytes: int) -> str:
        """``nbytes`` random bytes as hex (version ids are 32 bytes)."""
        return f"{self.bits(8 * nbytes):0{2 * nbytes}x}"
