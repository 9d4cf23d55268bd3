"""Image sequences: one frame per image file (PNG, TIFF, JPEG, BMP), in natural order.

Given as a glob pattern (``"dir/*.png"``), a list of paths, a directory of images or a
single image file.
"""

from __future__ import annotations

import glob as _glob
import os
from pathlib import Path

import numpy as np

from daskloc._utils import is_glob, natural_key
from daskloc.video._base import (
    Source,
    UnsupportedSourceError,
    VideoError,
    fingerprint_files,
    is_path,
)
from daskloc.video.tiff import TIFF_EXTENSIONS

__all__ = ["IMAGE_EXTENSIONS", "ImageSequenceSource", "natural_key"]

#: Single-image files accepted in an image sequence.
IMAGE_EXTENSIONS = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")


def _image_signature(path):
    """Cheap header-only (shape-ish, mode-ish) signature of one image file."""
    if Path(path).suffix.lower() in TIFF_EXTENSIONS:
        import tifffile

        with tifffile.TiffFile(path) as tf:
            page = tf.pages[0]
            return (tuple(int(s) for s in page.shape), str(page.dtype), len(tf.pages))
    from PIL import Image

    with Image.open(path) as im:
        return ((im.size[1], im.size[0]), im.mode, getattr(im, "n_frames", 1))


def _read_image(path):
    suffix = Path(path).suffix.lower()
    if suffix in TIFF_EXTENSIONS:
        import tifffile

        return tifffile.imread(path)
    import imageio.v3 as iio

    return iio.imread(path)


def _paths_of(source):
    """(sorted list of image paths, description) of a glob, directory, file or list."""
    if isinstance(source, (list, tuple)):
        if not source:
            raise ValueError("empty list of image files: give at least one path")
        paths = []
        for p in source:
            if not is_path(p):
                raise TypeError(
                    f"an image sequence must be a list of paths, got an item {p!r} "
                    f"({type(p).__name__})"
                )
            if not Path(p).is_file():
                raise FileNotFoundError(f"no such file: {os.fspath(p)!r}")
            paths.append(os.fspath(p))
        paths.sort(key=natural_key)
        if len(paths) == 1:
            return paths, paths[0]
        return paths, f"{len(paths)} files: {paths[0]} ... {paths[-1]}"
    text = os.fspath(source)
    if is_glob(source):
        paths = sorted(_glob.glob(text, recursive=True), key=natural_key)
        paths = [p for p in paths if Path(p).is_file()]
        if not paths:
            raise FileNotFoundError(f"no files match the pattern {text!r}")
        return paths, text
    path = Path(text)
    if path.is_dir():
        files = [p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")]
        images = [p for p in files if p.suffix.lower() in IMAGE_EXTENSIONS]
        if not images:
            raise FileNotFoundError(
                f"no image files ({', '.join(IMAGE_EXTENSIONS)}) in directory {str(path)!r}"
            )
        same = {".tiff": ".tif", ".jpeg": ".jpg"}
        kinds = sorted({same.get(p.suffix.lower(), p.suffix.lower()) for p in images})
        if len(kinds) > 1:
            raise VideoError(
                f"directory {str(path)!r} mixes image types ({', '.join(kinds)}); pass a "
                f"glob such as {str(path / ('*' + kinds[0]))!r}"
            )
        return sorted((str(p) for p in images), key=natural_key), str(path)
    return [text], text


class ImageSequenceSource(Source):
    """An image sequence: one frame per file, all of the same shape and mode.

    Parameters
    ----------
    source : str, path-like, or list/tuple of them
        A glob pattern such as ``"dir/*.png"`` (``**`` recurses), a directory holding
        images of one type (hidden files ignored), a list of image files or one image
        file. Files are sorted naturally (``img2.png`` before ``img10.png``),
        case-insensitively.

    Raises
    ------
    FileNotFoundError
        The pattern matches no file, the directory holds no image, a listed file is
        missing.
    ValueError
        An empty list.
    TypeError
        A list item that is not a path.
    UnsupportedSourceError
        A file that is not a supported image (a ``VideoError``).
    VideoError
        Frames of different shapes or modes, a file holding several images, a
        directory mixing image types, an unreadable image.
    """

    name = "images"
    suffixes = IMAGE_EXTENSIONS
    summary = (
        "image sequences (a glob such as 'dir/*.png', a list of paths or a directory of "
        "PNG/TIFF/JPEG/BMP files)"
    )
    priority = 90  # takes any directory, glob and list: asked last
    per_frame = True

    @classmethod
    def can_open(cls, source):
        """True for a glob pattern, a directory, a list/tuple or an existing image file."""
        if isinstance(source, (list, tuple)):
            return True
        if not is_path(source):
            return False
        if is_glob(source):
            return True
        path = Path(os.fspath(source))
        return path.is_dir() or (path.is_file() and path.suffix.lower() in cls.suffixes)

    @classmethod
    def role(cls, item):
        """``"video"`` for a glob, a directory or a list; ``"frame"`` for one image file
        (existing or not); else None."""
        if not is_path(item):
            return "video" if isinstance(item, (list, tuple)) else None
        if is_glob(item) or Path(os.fspath(item)).is_dir():
            return "video"
        return "frame" if Path(os.fspath(item)).suffix.lower() in cls.suffixes else None

    @classmethod
    def stem(cls, path):
        """A folder's name (whatever its suffix), else the file's stem."""
        text = os.fspath(path)
        folder = Path(text.rstrip("/" + os.sep) or text)
        return folder.name if folder.is_dir() else folder.stem

    def __init__(self, source):
        paths, description = _paths_of(source)
        self.paths = list(paths)
        self.path = description
        for p in self.paths:
            if Path(p).suffix.lower() not in IMAGE_EXTENSIONS:
                raise UnsupportedSourceError(
                    f"{p}: not a supported image file for an image sequence (expected "
                    f"{', '.join(IMAGE_EXTENSIONS)})"
                )
        try:
            signatures = [_image_signature(p) for p in self.paths]
        except Exception as exc:
            raise VideoError(f"cannot read image header ({type(exc).__name__}: {exc})") from exc
        first = signatures[0]
        for p, sig in zip(self.paths, signatures):
            if sig[2] != 1:
                raise VideoError(
                    f"{p}: holds {sig[2]} images; an image sequence needs one image per "
                    "file (open a multi-page TIFF directly)"
                )
            if sig[:2] != first[:2]:
                raise VideoError(
                    f"image sequence frames differ: {self.paths[0]} is {first[0]} "
                    f"({first[1]}) but {p} is {sig[0]} ({sig[1]}); all frames must have "
                    "the same shape and mode"
                )
        try:
            image = np.asarray(_read_image(self.paths[0]))
        except Exception as exc:
            raise VideoError(
                f"{self.paths[0]}: cannot read image ({type(exc).__name__}: {exc})"
            ) from exc
        if image.ndim not in (2, 3):
            raise VideoError(f"{self.paths[0]}: image of shape {image.shape} is not 2-D")
        self.frame_shape = tuple(int(s) for s in image.shape)
        self.dtype = image.dtype
        n = len(self.paths)
        self.labels = np.arange(n, dtype=np.int64)
        self.attrs = {
            "source": description,
            "original_shape": (n,) + self.frame_shape,
            "original_dtype": str(self.dtype),
            "n_frames": n,
        }

    def fingerprint(self):
        """Total size and newest mtime of the sequence's image files."""
        return fingerprint_files(self.paths)

    def token_parts(self):
        """Path, mtime and size of every file."""
        parts = []
        for p in self.paths:
            st = os.stat(p)
            parts.append((p, st.st_mtime_ns, st.st_size))
        return tuple(parts)

    def spec(self):
        """``(first path, frame_shape, dtype)``: what every frame must match."""
        return (self.paths[0], self.frame_shape, str(self.dtype))

    def chunk_args(self, positions):
        """The chunk's image paths, a tuple of str."""
        return tuple(self.paths[int(p)] for p in positions)

    @classmethod
    def frame_path(cls, spec, arg, i):
        """The image file of frame ``i``."""
        return arg[int(i)]

    @staticmethod
    def read(spec, arg):
        """Read the chunk's image files, one frame each."""
        # errors (a missing file, a truncated PNG, ...) propagate as they are: the chunk
        # task turns them into VideoDecodeError naming the image file and the frame
        first, frame_shape, dtype = spec
        for i, path in enumerate(arg):
            image = np.asarray(_read_image(path))
            if image.shape != tuple(frame_shape) or str(image.dtype) != dtype:
                raise VideoError(
                    f"image sequence frames differ: {path} is {image.shape} {image.dtype} "
                    f"but {first} is {tuple(frame_shape)} {dtype}; all frames must have the "
                    "same shape and dtype"
                )
            yield i, image[None]
