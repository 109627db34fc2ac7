# schemas/_scan: the C scanners (schemas/_scan/*.c); see schemas/scanned.py for their use.
Column = tuple[bytes, bytes, bytes | None, int]  # int32 offsets, UTF-8 data, validity bitmap, nulls

def scan_real(
    frames: list[bytes], wanted: dict[str, tuple[str, ...]]
) -> dict[str, tuple[int, bytes, list[Column]]] | None: ...
def scan_pages(
    pages: list[bytes], lists: tuple[str, ...], items: tuple[str, ...], scalars: tuple[str, ...]
) -> tuple[bytes, bytes, Column, list[Column], list[Column]] | None: ...
