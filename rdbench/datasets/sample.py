"""The ``sample`` dataset: the colour photographs that ship inside scikit-image.

They are on disk wherever rdbench is installed (no network), which makes ``sample`` the
default dataset of a benchmark run and of the tests. Ids are the photographs' stems.
"""
from __future__ import annotations

from pathlib import Path

from rdbench.datasets.base import Dataset, DatasetError, ImageRef

#: Everyday RGB photographs among scikit-image's bundled data files (not the synthetic,
#: grayscale, astronomical or microscopy images; one of the stereo pair), in a fixed order.
#: Four images keep the default run of six codecs well under a minute on two cores.
SAMPLE_FILES = (
    "astronaut.png",  # 512×512
    "chelsea.png",  # 300×451
    "coffee.png",  # 400×600
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
