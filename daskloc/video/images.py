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
from daskloc.video._follow import Growing, Growth
from daskloc.video.tiff import TIFF_EXTENSIONS

__all__ = ["IMAGE_EXTENSIONS", "GrowingImages", "ImageSequenceSource", "natural_key"]

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


def _first_image(path):
    """``(frame_shape, dtype)`` of the first image of a sequence, read whole."""
    try:
        image = np.asarray(_read_image(path))
    except Exception as exc:
        raise VideoError(f"{path}: cannot read image ({type(exc).__name__}: {exc})") from exc
    if image.ndim not in (2, 3):
        raise VideoError(f"{path}: image of shape {image.shape} is not 2-D")
    return tuple(int(s) for s in image.shape), image.dtype


def image_complete(path, size):
    """Whether an image file of ``size`` bytes is written to its end.

    Each format's own end says so: a PNG ends with its ``IEND`` chunk, a JPEG with the
    end-of-image marker ``FF D9``, a BMP is as long as its header says (when the
    header says), a TIFF holds every byte of its first page's data. A file being
    written has not reached that end yet.

    Parameters
    ----------
    path : str
    size : int
        The file's size in bytes, as a stat of the scan saw it.

    Returns
    -------
    bool
    """
    suffix = Path(path).suffix.lower()
    try:
        if suffix in TIFF_EXTENSIONS:
            import tifffile

            with tifffile.TiffFile(path) as tf:
                page = tf.pages.first
                ends = [int(o) + int(n) for o, n in zip(page.dataoffsets, page.databytecounts)]
                return bool(ends) and max(ends) <= size
        with open(path, "rb") as fh:
            if suffix == ".png":
                if size < 20:
                    return False
                fh.seek(size - 12)
                return fh.read(12)[4:8] == b"IEND"
            if suffix in (".jpg", ".jpeg"):
                if size < 4:
                    return False
                fh.seek(size - 2)
                return fh.read(2) == b"\xff\xd9"
            if suffix == ".bmp":
                head = fh.read(6)
                declared = int.from_bytes(head[2:6], "little") if len(head) == 6 else -1
                return head[:2] == b"BM" and declared in (0, size)
    except Exception:  # noqa: BLE001 - not readable yet (a header being written)
        return False
    return False


class GrowingImages(Growing):
    """A folder of image files (or a glob of them) that grows while it is recorded.

    A file counts as a frame once it is complete (:func:`image_complete`) and its size
    and modification time are what the scan before saw (nothing is still being
    written to it); files count in natural order, so one that is not complete holds
    back those after it. Hidden files, and files of other types than the first one,
    are left out (a writer's temporary ``.tmp`` or ``.part`` files).

    Parameters
    ----------
    source : str or path-like
        A directory or a glob pattern (``"run/*.tif"``).
    """

    reader = "images"

    def __init__(self, source):
        if isinstance(source, (list, tuple)):
            raise TypeError("a list of files does not grow: follow a folder or a glob "
                            "pattern")
        super().__init__(source)
        self.glob = is_glob(self.given)
        if not self.glob and not os.path.isdir(self.path):
            raise VideoError(f"{self.path}: follow watches a folder of images (or a glob "
                             "pattern), not one image file")
        self.paths = []  # the complete frames' files, in order
        self._counted = set()
        self._seen = {}  # path -> (size, mtime_ns) at the last scan, for files not counted
        self._suffix = None
        self._first = None

    def _listing(self):
        if self.glob:
            found = [p for p in _glob.glob(self.given, recursive=True)
                     if os.path.isfile(p)]
        else:
            with os.scandir(self.path) as it:
                found = [e.path for e in it if e.is_file() and not e.name.startswith(".")]
        same = {".tiff": ".tif", ".jpeg": ".jpg"}
        images = [p for p in found if Path(p).suffix.lower() in IMAGE_EXTENSIONS]
        if self._suffix is None and images:
            first = min(images, key=natural_key)
            self._suffix = same.get(Path(first).suffix.lower(), Path(first).suffix.lower())
        return [p for p in images
                if same.get(Path(p).suffix.lower(), Path(p).suffix.lower()) == self._suffix]

    def scan(self):
        """Count the files written completely since the last scan (see the class)."""
        listing = self._listing()
        if len(self._counted) and not self._counted.issubset(listing):
            gone = sorted(self._counted.difference(listing), key=natural_key)
            raise VideoError(
                f"{gone[0]}: a frame already located was removed from the recording "
                f"{self.path} ({len(gone)} files are gone); a recording only grows")
        new = sorted((p for p in listing if p not in self._counted), key=natural_key)
        if new and self.paths and natural_key(new[0]) < natural_key(self.paths[-1]):
            raise VideoError(
                f"{new[0]} appeared in {self.path} after {self.paths[-1]}, but sorts "
                "before it: the frames would be numbered anew. Name frames so that each "
                "new one sorts last (zero-padded numbers: img_000123.tif)")
        seen = {}
        for p in new:
            st = os.stat(p)
            now = (st.st_size, st.st_mtime_ns)
            if self._seen.get(p) == now and image_complete(p, st.st_size):
                self.paths.append(p)
                self._counted.add(p)
                continue
            seen[p] = now
            # a file not complete holds back the later ones; remember them all the same
            for q in new[new.index(p) + 1:]:
                sq = os.stat(q)
                seen[q] = (sq.st_size, sq.st_mtime_ns)
            break
        self._seen = seen
        return Growth(len(self.paths))

    def source(self, n_frames):
        if self._first is None:
            self._first = _first_image(self.paths[0])
        return ImageSequenceSource._of_checked(self.paths[:n_frames], self.path, self._first)


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
    growing = GrowingImages

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
        self._setup(_first_image(self.paths[0]))

    @classmethod
    def _of_checked(cls, paths, description, first):
        """The sequence of ``paths`` without reading their headers again (their frames'
        shape and dtype are still checked by every chunk read): a followed folder's
        complete files, ``first`` the :func:`_first_image` of ``paths[0]``."""
        self = cls.__new__(cls)
        self.paths = list(paths)
        self.path = description
        self._setup(first)
        return self

    def _setup(self, first):
        self.frame_shape, self.dtype = first
        n = len(self.paths)
        self.labels = np.arange(n, dtype=np.int64)
        self.attrs = {
            "source": self.path,
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
