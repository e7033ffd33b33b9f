"""The one safe join for every file the CLI writes (``submit --wait`` downloads, ``demo`` outputs).

Job ids, output prefixes and S3 keys come from job documents and records: whoever wrote the job chose them.
:func:`safe_join` turns them into a path that is guaranteed to stay under the folder the user named, or
raises -- ``..`` segments, absolute parts and symbolic links leading outside included.
"""

from __future__ import annotations

from pathlib import Path

from mediagen.errors import MediagenError


class UnsafePath(MediagenError):
    """A path built from job data would leave its root folder (``..``, an absolute part, a symbolic link)."""

    code = "unsafe_path"


def safe_join(root: Path | str, *parts: str) -> Path:
    """``root`` joined with ``parts`` (each may hold ``/``-separated segments, e.g. an S3 key's tail), checked
    to stay inside ``root`` once every symbolic link on the way is resolved.

    Returns:
        The resolved absolute path (it need not exist yet).

    Raises:
        UnsafePath: a part is absolute, holds a ``.`` or ``..`` segment, a backslash or a NUL, or the
            resolved path (symbolic links followed) is not inside the resolved ``root``. The message names
            the part and the root.
    """
    base = Path(root).resolve()
    segments: list[str] = []
    for part in parts:
        text = str(part)
        if "\0" in text or "\\" in text:
            raise UnsafePath(f"refusing to write {text!r} under {base}: NUL or backslash in a path")
        if text.startswith("/"):
            raise UnsafePath(f"refusing to write {text!r} under {base}: an absolute path")
        pieces = [piece for piece in text.split("/") if piece != ""]
        if not pieces or any(piece in (".", "..") for piece in pieces):
            raise UnsafePath(f"refusing to write {text!r} under {base}: empty, '.' or '..' path segment")
        segments.extend(pieces)
    target = base.joinpath(*segments).resolve()
    if target != base and base not in target.parents:
        raise UnsafePath(f"refusing to write {'/'.join(parts)!r}: it resolves to {target}, outside {base} "
                         "(a symbolic link?)")
    return target


def write_file(root: Path | str, *parts: str, data: bytes | str) -> Path:
    """Write ``data`` to :func:`safe_join` ``(root, *parts)``, creating the folders between (each checked
    again after it is created, so a link planted on the way is caught). Returns the path written.

    Raises:
        UnsafePath: see :func:`safe_join`.
    """
    path = safe_join(root, *parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    path = safe_join(root, *parts)
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return path
