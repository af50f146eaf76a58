"""File-listing helpers shared by the on-disk sources (no pixel decoding)."""

from __future__ import annotations

from pathlib import Path

from multimix.data.dicom import has_dicom_signature
from multimix.data.io import missing_file_reason
from multimix.data.sources.base import Skipped, SourceScan

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".dcm", ".dicom")

# Archives made on macOS carry a "__MACOSX" folder of resource forks; it is never data.
_JUNK_NAMES = frozenset({"__MACOSX", "Thumbs.db", "desktop.ini"})


def is_hidden(path: Path) -> bool:
    """True for dot files (``.DS_Store``, ``._x.png`` resource forks...) and OS junk."""
    return path.name.startswith(".") or path.name in _JUNK_NAMES


def is_image(path: Path) -> bool:
    """True when the suffix (any case) is one this library decodes, or the file holds DICOM
    under any name (PACS exports ``IM000001`` or ``1.2.840.113619.2.55.3``)."""
    return path.suffix.lower() in IMAGE_SUFFIXES or has_dicom_signature(path)


def visible_children(folder: Path) -> list[Path]:
    """The non-hidden entries of ``folder``, sorted by name for deterministic scans."""
    return sorted((p for p in folder.iterdir() if not is_hidden(p)), key=lambda p: p.name)


def visible_dirs(folder: Path) -> list[Path]:
    """The non-hidden sub-folders of ``folder``, sorted by name."""
    return [p for p in visible_children(folder) if p.is_dir()]


def image_files(folder: Path, scan: SourceScan) -> list[Path]:
    """The image files directly inside ``folder``; anything else is recorded as skipped.

    Stray files (a README, a CSV, a sub-folder) are not errors in the dataset itself, so they
    are always skipped with a reason rather than raised, whatever ``on_error`` says.
    """
    images = []
    for path in visible_children(folder):
        if path.is_symlink() and not path.exists():
            scan.skipped.append(Skipped(str(path), missing_file_reason(path)))
        elif path.is_dir():
            scan.skipped.append(Skipped(str(path), "sub-folder ignored (images are expected directly here)"))
        elif not is_image(path):
            expected = f"{'/'.join(IMAGE_SUFFIXES)}, or DICOM content under any name"
            scan.skipped.append(Skipped(str(path), f"not an image file (expected {expected})"))
        else:
            images.append(path)
    return images


def make_uid(source: str, root: Path, path: Path) -> str:
    """``<source>/<path relative to the dataset root>`` with forward slashes on every OS."""
    return f"{source}/{path.relative_to(root).as_posix()}"


def absolute(path: Path) -> str:
    """An absolute path string, without resolving symlinks (users' links stay as they are)."""
    return str(path.absolute())
