"""Response bodies read with a cap that holds whatever the peer sends.

The cap applies to the bytes on the wire and, separately, to the bytes after decoding: a
Content-Length over the cap is refused before reading, a chunked or unannounced body is cut
off at the cap, and gzip/deflate are inflated by us in bounded steps (httpx's own decoder
inflates each network chunk whole: a 64 KiB chunk of a gzip bomb is ~64 MiB). Nothing here
buffers more than the cap plus one network chunk.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator

import httpx

from .errors import BadResponse, TooLarge

# What we accept; anything else (br, zstd, stacked encodings) is refused unread.
ACCEPT_ENCODING = "gzip, deflate"
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


async def read_capped(response: httpx.Response, *, limit: int, what: str) -> bytes:
    """The decoded body of a streamed `response`, at most `limit` bytes; TooLarge beyond.
    `what` names the body in messages ("manifest … from registry X")."""
    length = response.headers.get("content-length")
    if length is not None and (not length.strip().isdigit() or int(length) > limit):
        raise TooLarge(f"{what} is too large", detail=f"Content-Length {length[:20]!r} > {limit}")
    if response.is_stream_consumed:  # a transport that hands over bodies already read
        body = response.content  # decoded by httpx; the cap still holds for what we keep
        if len(body) > limit:
            raise TooLarge(f"{what} is too large", detail=f"body over {limit} bytes")
        return body
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    raw = response.aiter_raw()
    if encoding in ("", "identity"):
        return await _collect(raw, limit=limit, what=what)
    if encoding not in _WBITS:
        raise BadResponse(f"{what} is invalid", detail=f"Content-Encoding {encoding[:40]!r}")
    return await _collect(_inflate(raw, encoding, limit=limit, what=what), limit=limit, what=what)


async def _collect(chunks: AsyncIterator[bytes], *, limit: int, what: str) -> bytes:
    parts, size = [], 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"{what} is too large", detail=f"body over {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


async def _inflate(
    raw: AsyncIterator[bytes], encoding: str, *, limit: int, what: str
) -> AsyncIterator[bytes]:
    """Inflated chunks, never more than limit + 1 bytes from one call: the caller's count
    then stops a bomb at the cap, however well it compresses."""
    inflater = zlib.decompressobj(_WBITS[encoding])
    wire = 0
    try:
        async for chunk in raw:
            wire += len(chunk)
            if wire > limit:
                raise TooLarge(f"{what} is too large", detail=f"compressed body over {limit}")
            data = chunk
            while data:
                out = inflater.decompress(data, limit + 1)
                yield out
                data = inflater.unconsumed_tail
                if not out and data:  # no progress: corrupt input
                    break
        yield inflater.flush()
    except zlib.error as error:
        raise BadResponse(f"{what} is invalid", detail=f"{encoding}: {error}") from None


__all__ = ["ACCEPT_ENCODING", "read_capped"]
