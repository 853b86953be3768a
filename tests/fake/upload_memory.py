"""How much memory the fake holds for one upload: ``python -m tests.fake.upload_memory 99``.

Starts a fake, uploads a file of N MB through a raw socket (the client adds no copy),
and reports (with tracemalloc) the peak memory allocated while the upload is handled,
what stays allocated while the file is stored, and after it is deleted, as multiples
of the file's size.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import tracemalloc
from dataclasses import dataclass

from replicate_async.testing import FakeReplicate

MB = 1024 * 1024


@dataclass
class UploadMemory:
    size: int
    peak: int
    stored: int
    after_delete: int

    def ratios(self) -> tuple[float, float, float]:
        return (self.peak / self.size, self.stored / self.size, self.after_delete / self.size)


def _multipart(content: bytes) -> tuple[bytes, bytes]:
    head = (
        b'--B\r\nContent-Disposition: form-data; name="content"; filename="big.bin"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n"
    )
    return head, b"\r\n--B--\r\n"


async def _send(fake: FakeReplicate, content: bytes) -> dict[str, object]:
    head, tail = _multipart(content)
    reader, writer = await asyncio.open_connection("127.0.0.1", fake.port)
    length = len(head) + len(content) + len(tail)
    writer.write(
        b"POST /v1/files HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        + f"Authorization: Bearer {fake.token}\r\nContent-Length: {length}\r\n".encode()
        + b"Content-Type: multipart/form-data; boundary=B\r\n\r\n"
        + head
    )
    view = memoryview(content)
    for start in range(0, len(content), 256 * 1024):
        writer.write(view[start : start + 256 * 1024])
        await writer.drain()
    writer.write(tail)
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    body = answer.partition(b"\r\n\r\n")[2]
    result: dict[str, object] = json.loads(body)
    return result


async def _delete(fake: FakeReplicate, file_id: str) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", fake.port)
    writer.write(
        f"DELETE /v1/files/{file_id} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        f"Authorization: Bearer {fake.token}\r\n\r\n".encode()
    )
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    assert answer.startswith(b"HTTP/1.1 204"), answer


async def measure(megabytes: float) -> UploadMemory:
    """Upload ``megabytes`` MB to a fresh fake and measure its memory (tracemalloc)."""
    content = bytes(range(256)) * int(megabytes * MB / 256)
    async with FakeReplicate(seed=False) as fake:
        gc.collect()
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            file = await _send(fake, content)
            gc.collect()
            current, peak = tracemalloc.get_traced_memory()
            stored = current - base
            await _delete(fake, str(file["id"]))
            gc.collect()
            after = tracemalloc.get_traced_memory()[0] - base
        finally:
            tracemalloc.stop()
    return UploadMemory(len(content), peak - base, stored, after)


def main() -> None:
    megabytes = float(sys.argv[1]) if len(sys.argv) > 1 else 99.0
    result = asyncio.run(measure(megabytes))
    peak, stored, after = result.ratios()
    print(
        f"upload {result.size / MB:.1f} MB: peak {result.peak / MB:.1f} MB ({peak:.2f}x), "
        f"held while stored {result.stored / MB:.1f} MB ({stored:.2f}x), "
        f"after delete {result.after_delete / MB:.2f} MB ({after:.3f}x)"
    )


if __name__ == "__main__":
    main()
