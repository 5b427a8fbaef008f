"""The ``sample`` dataset: the colour photographs that ship inside scikit-image.

They are on disk wherever rdbench is installed (no network), which makes ``sample`` the
default dataset of a benchmark run and of the tests. Ids are the photographs' stems.
"""
from __future__ import annotations

from pathlib import Path

from rdbench.datasets.base import Dataset, DatasetError, ImageRef

#: The RGB photographs among scikit-image's bundled data files (not the synthetic,
#: grayscale or microscopy images), in a fixed order.
SAMPLE_FILES = (
    "astronaut.png",  # 512×512
    "chelsea.png",  # 300×451
    "coffee.png",  # 400×600
    "hubble_deep_field.jpg",  # 872×1000
    "motorcycle_left.png",  # 500×741
    "rocket.jpg",  # 427×640
)


def sample_dataset() -> Dataset:
    """The bundled photographs as a dataset named ``sample``."""
    import skimage

    root = Path(skimage.__file__).parent / "data"
    refs = []
    for name in SAMPLE_FILES:
        path = root / name
        if not path.is_file():
            raise DatasetError(f"sample image {path} is missing from the installed scikit-image")
        refs.append(ImageRef(Path(name).stem, str(path)))
    return Dataset("sample", tuple(refs), root=str(root))
