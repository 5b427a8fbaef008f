"""The dataset catalog: what each named dataset is made of and where its files come from.

One frozen :class:`CatalogEntry` per dataset split: source files (URL, size, checksum and where it
comes from; ``None`` = trust on first use), access (``open`` or ``login``), layout (image files or
archive members, nested archives), image count and licence. ``RDBENCH_MIRROR`` replaces every
``base_url``. :func:`register` and :func:`unregister` add and remove entries. Details:
docs/datasets.md.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from types import MappingProxyType
from typing import Iterable, Mapping

from rdbench import download
from rdbench.download import MIRROR_ENV

__all__ = [
    "ACCESS_KINDS",
    "ARCHIVE_SUFFIXES",
    "CatalogEntry",
    "Checksum",
    "SourceFile",
    "CATALOG",
    "MIRROR_ENV",
    "catalog_names",
    "get_entry",
    "is_catalogued",
    "mirror_url",
    "register",
    "unregister",
]

#: ``open``: downloaded automatically. ``login``: needs an account on the provider's site, so the
#: user downloads the file and places it in ``<data_root>/downloads/``.
ACCESS_KINDS = ("open", "login")

#: File name endings treated as archives (anything else is a single image file).
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")

_HEX_LENGTHS = {"sha256": 64, "md5": 32}


@dataclass(frozen=True)
class Checksum:
    """A published checksum: ``algorithm`` (``sha256`` or ``md5``), lowercase hex ``value``, and
    ``origin`` (where the value comes from, for the record)."""

    algorithm: str
    value: str
    origin: str = ""

    def __post_init__(self) -> None:
        if self.algorithm not in _HEX_LENGTHS:
            raise ValueError(f"unsupported checksum algorithm {self.algorithm!r} (use sha256 or md5)")
        if not re.fullmatch(f"[0-9a-f]{{{_HEX_LENGTHS[self.algorithm]}}}", self.value):
            raise ValueError(f"malformed {self.algorithm} value {self.value!r}")


@dataclass(frozen=True)
class SourceFile:
    """One file to obtain.

    ``base_url`` + ``path`` is the canonical URL; a mirror replaces ``base_url`` only.
    ``filename`` is where the file lives under ``<data_root>/downloads/`` (default: the last
    component of ``path``); files shared by several entries (Cityscapes' one archive for three
    splits) are downloaded and verified once.
    """

    base_url: str
    path: str
    size: int | None = None
    checksum: Checksum | None = None
    filename: str = ""
    size_hint: str = ""  # human-readable approximate size, for messages when ``size`` is unknown

    def __post_init__(self) -> None:
        if not self.filename:
            object.__setattr__(self, "filename", PurePosixPath(self.path).name)
        fn = PurePosixPath(self.filename)
        if fn.is_absolute() or ".." in fn.parts or not fn.parts:
            raise ValueError(f"download filename {self.filename!r} must be a plain relative path")

    @property
    def url(self) -> str:
        return _join_url(self.base_url, self.path)

    @property
    def is_archive(self) -> bool:
        return self.filename.lower().endswith(ARCHIVE_SUFFIXES)

    def describe_size(self) -> str:
        if self.size is not None:
            return f"{self.size:,} bytes"
        return self.size_hint or "size unknown"


@dataclass(frozen=True)
class CatalogEntry:
    """A named dataset split: its sources, how to access them and where the images are."""

    name: str
    title: str
    sources: tuple[SourceFile, ...]
    licence: str
    homepage: str
    access: str = "open"
    image_count: int | None = None
    #: Path prefix inside the archives that holds this split's images (``None``: every image). A
    #: leading ``**/`` matches it at any depth, for archives whose top folder is not documented.
    members: str | None = None
    #: Image file endings to take (case-insensitive); other members are ignored.
    extensions: tuple[str, ...] = (".png",)
    #: Archives inside the archive whose images are taken too (ImageNet's per-class tars).
    nested_archives: bool = False
    #: Free-text notes: checksum provenance, caveats.
    notes: str = ""
    #: Extra guidance for ``login`` datasets (shown when the file is missing).
    instructions: str = ""

    def __post_init__(self) -> None:
        if self.access not in ACCESS_KINDS:
            raise ValueError(f"{self.name}: access must be one of {ACCESS_KINDS}, not {self.access!r}")
        if not self.sources:
            raise ValueError(f"{self.name}: no source files")
        if self.members is not None and (self.members.startswith("/") or ".." in self.members.split("/")):
            raise ValueError(f"{self.name}: members prefix {self.members!r} must be relative")
        object.__setattr__(self, "extensions", tuple(e.lower() for e in self.extensions))

    @property
    def has_archives(self) -> bool:
        return any(s.is_archive for s in self.sources)

    def _members_end(self, relpath: str) -> int | None:
        """Where the ``members`` prefix ends in ``relpath`` (0 without one); None when it is absent."""
        if self.members is None:
            return 0
        if self.members.startswith("**/"):
            folder = "/" + self.members[3:]
            at = ("/" + relpath).find(folder)
            return None if at < 0 else at + len(folder) - 1
        return len(self.members) if relpath.startswith(self.members) else None

    def selects(self, relpath: str) -> bool:
        """True when an archive member (posix path) is one of this split's images."""
        if self._members_end(relpath) is None:
            return False
        return relpath.lower().endswith(self.extensions)

    def image_relpath(self, relpath: str) -> str:
        """The member's path with the ``members`` prefix removed (the basis of its image id)."""
        end = self._members_end(relpath)
        return relpath[end or 0:].lstrip("/")


def _join_url(base: str, path: str) -> str:
    return base.rstrip("/") + "/" + path.lstrip("/")


def mirror_url(entry: CatalogEntry, source: SourceFile, mirror: str | None = None) -> str:
    """The URL to fetch ``source`` from: the mirror (argument, else ``$RDBENCH_MIRROR``) + the
    source's relative path, or the canonical URL when no mirror is set."""
    return download.mirror_url(source.url, source.path, mirror, folder=entry.name)


# --------------------------------------------------------------------------------------------
# The entries.
# --------------------------------------------------------------------------------------------

_KODAK_BASE = "http://r0k.us/graphics/kodak/kodak/"
# (bytes, sha256) of kodim01..24.png, computed from the originals (shared/kodak/SHA256SUMS).
_KODAK_FILES = (
    (736501, "a56e27cbf5f843c048b6af1d6e090760e9c92fadba88b7dee0205918a37523bd"),
    (617995, "4f4b74a79237e311d72cad958237b5f7088d8bce1c82305ebefe1a70e3022dfd"),
    (502888, "e25ca1ff2f0c0cb5fdfd5f9b0a0bb21ac4c3de3c84a67f35b09a85d3306249db"),
    (637432, "e3b946107c5d3441c022f678d0c3caf1e224d81b1604ba840a4f88e562de61aa"),
    (785610, "10349e963c5c813d327852f82c1795fa4148d69fedffc4c589bee458e3ac3d53"),
    (618959, "363510303b715d4cbc384e1ce227e466b613a09e1b71ae985882bf8e7fbd9b18"),
    (566322, "b77d3f006f42414bb242222e0482e750c0fb9e5ee8d4bed2f6f11c5605fe54a4"),
    (788470, "ba23983c76b4832ee0e8af0592664756841a16779acd69f792e268fb6d13d6e7"),
    (582899, "6a4361c2fc194feb4edaa9f9a4a0620fb9943e460ac7fdf037fb0f6dd6607a7d"),
    (593463, "9dfb70f5867c29ff9ed6313683f19b3d867849e40fbc0c4c54a4a89df341cf23"),
    (621023, "7936814b58b5387fce2e4e2488b4ec830dadd95fa9520f358ddb30990b50f2b6"),
    (531024, "d78c37c2f04f23761ed2367dd77e2db584ddd4c3950833fecf89f199a8126980"),
    (822712, "bc34a3ce58dea09dce1704c997171602de90cb34d0c8503a988b77f473d39b08"),
    (692201, "55a94550ff18f3246c4074fd32b77b0c74447c26b6ad274d564d999c0450ba6e"),
    (612582, "7538cbb80cb9103606c48b806eae57d56c885c7f90b9b3be70a41160f9cbb683"),
    (534247, "a89c7268ccd4718ba424a99fc4643c572cf692ca6eae887185ceb4e9f11d2e54"),
    (602078, "37afcc89fbdcb76d9518e04b2fc011027e2f4cd14b3b2f83cefd721641a47c5b"),
    (780947, "1a9258c365988961d87a0598725b609139c303ad48a5aad6c503c3b1a87849aa"),
    (671476, "b7450b264b1b0a411390d8931b112c27905a992520fc90569dc4b920aa32bbdc"),
    (492462, "3b46c71e3b92a563820ba32936be8330c586c41f938efd94be938386aae4328a"),
    (637051, "ac958597c82073f6bb65129c68f72b651db5b9efd82e11547d07350214bc268b"),
    (701970, "1cee58eb1f2d9c7ebb254d208a03c783ce6cf2c4d8c2cf45e235dd23b4ce1b29"),
    (557596, "e3111a2fd4da24af15d6459ef9eacfe54106b38e27b4a21821b75c3f5d2d5baf"),
    (706397, "1071c68372cc5a01435c2c225a5cf7d4bb803846ec08bb6b3d6721b156d7cb96"),
)

_KODAK = CatalogEntry(
    name="kodak",
    title="Kodak Lossless True Color Image Suite (PhotoCD PCD0992), 24 images",
    sources=tuple(
        SourceFile(
            _KODAK_BASE,
            f"kodim{i:02d}.png",
            size=size,
            checksum=Checksum("sha256", digest, "computed from the r0k.us originals"),
            filename=f"kodak/kodim{i:02d}.png",
        )
        for i, (size, digest) in enumerate(_KODAK_FILES, start=1)
    ),
    licence="Released by the Eastman Kodak Company for unrestricted usage (as stated on r0k.us).",
    homepage="http://r0k.us/graphics/kodak/",
    image_count=24,
    notes="768x512 (kodim04, 09, 10, 17, 18, 19 are 512x768), 8-bit RGB; 15,394,305 bytes in all.",
)

_CLIC_BASE = "https://data.vision.ee.ethz.ch/cvl/clic/"
_CLIC_HOME = "https://www.compression.cc/"
_CLIC_LICENCE = (
    "Unsplash licence (https://data.vision.ee.ethz.ch/cvl/clic/LICENSE_professional_2020.txt); "
    "see the CLIC challenge site for the terms of each set."
)
_TFDS = "tensorflow/datasets url_checksums/clic.txt"


def _clic2020(split: str, kind: str, path: str, size: int, sha256: str, count: int | None,
              members: str | None, notes: str = "") -> CatalogEntry:
    return CatalogEntry(
        name=f"clic2020-{kind}-{split}",
        title=f"CLIC 2020 {kind} {split} set",
        sources=(SourceFile(_CLIC_BASE, path, size=size, checksum=Checksum("sha256", sha256, _TFDS)),),
        licence=_CLIC_LICENCE,
        homepage=_CLIC_HOME,
        image_count=count,
        members=members,
        notes="PNG, variable size; some images are grayscale (converted to RGB). " + notes,
    )


_CLIC2020 = (
    _clic2020("valid", "professional", "professional_valid_2020.zip", 134834429,
              "00be38092ade2ab5163b65f7f6523d46c7bca147007f559adbb02c0afc236b7d", 41, "valid/",
              "Published md5 7111ee240435911db04dbc5f40d50272 (NeuralCompression)."),
    _clic2020("valid", "mobile", "mobile_valid_2020.zip", 236556531,
              "ff0280382eeb32fdceb28c81a7f47ac9ad86d933ebe901680845635d04e47a10", 61, "valid/"),
    _clic2020("test", "professional", "test/CLIC2020Professional_test.zip", 891643809,
              "857df244fc2bfa5da28d4c66bf0db16ee99bfc79eb807be8afa89cd507852884", None, None,
              "Archive layout not documented: every PNG in it is taken; ids keep the archive path."),
    _clic2020("test", "mobile", "test/CLIC2020Mobile_test.zip", 721789976,
              "2025f07a6c652270e534640de4271feef3b3dd3260beed4ac4821064837aa732", None, None,
              "Archive layout not documented: every PNG in it is taken; ids keep the archive path."),
    _clic2020("train", "professional", "professional_train_2020.zip", 2003385131,
              "54a2a684b5cbd0db91770a8695efb774fed1f612194fee68bceaf6b1c48e5d5f", None, "train/",
              "Published md5 a6845cac88c3dd882246575f7a2fc5f9 (NeuralCompression)."),
    _clic2020("train", "mobile", "mobile_train_2020.zip", 4042923971,
              "4bf9d890e6785426fb41cb4f43df3d8cd6db25fafcc76fc1eb629141166d6529", None, "train/"),
)

_GCS = "https://storage.googleapis.com/"
_TOFU_NOTE = ("No checksum is published: the sha256 of the first download is recorded and later "
              "downloads are verified against it (trust on first use).")

_CLIC_LATER = (
    CatalogEntry(
        name="clic2021-test",
        title="CLIC 2021 image test set (professional)",
        sources=(SourceFile(_GCS + "clic2021_public/", "professional_test_2021.zip", size_hint="about 214 MB",
                            checksum=Checksum("md5", "4476b708ea4c492505dd70061bebe202",
                                              "facebookresearch/NeuralCompression")),),
        licence=_CLIC_LICENCE,
        homepage=_CLIC_HOME,
        notes="Flat *.png plus __MACOSX. Exact size and image count not published.",
    ),
    CatalogEntry(
        name="clic2022-valid",
        title="CLIC 2022 image validation set (30 images, longer side 2048)",
        sources=(SourceFile(_GCS + "clic2022_public/", "validation_sets/images.zip",
                            filename="clic2022_validation_images.zip", size_hint="about 250 MB"),),
        licence=_CLIC_LICENCE,
        homepage=_CLIC_HOME,
        image_count=30,
        notes=_TOFU_NOTE + " Exact size not published.",
    ),
    CatalogEntry(
        name="clic2022-test",
        title="CLIC 2022 image test set (30 images)",
        sources=(SourceFile(_GCS + "clic2022_public/", "test_sets/image_test_30.zip",
                            filename="clic2022_image_test_30.zip", size_hint="about 130 MB"),),
        licence=_CLIC_LICENCE,
        homepage=_CLIC_HOME,
        image_count=30,
        notes=_TOFU_NOTE + " Exact size not published.",
    ),
    CatalogEntry(
        name="clic2024-valid",
        title="CLIC 2024 image validation set",
        sources=(SourceFile(_GCS + "clic2023_public/", "validation_sets/clic2024_validation_image.zip"),),
        licence=_CLIC_LICENCE,
        homepage=_CLIC_HOME,
        notes=_TOFU_NOTE + " Size and image count unknown. Note the clic2023_public bucket; "
        "images are named by hex hashes.",
    ),
    CatalogEntry(
        name="clic2024-test",
        title="CLIC 2024 image test set",
        sources=(SourceFile(_GCS + "clic2023_public/", "test_sets/clic2024_test_image.zip"),),
        licence=_CLIC_LICENCE,
        homepage=_CLIC_HOME,
        notes=_TOFU_NOTE + " Size and image count unknown. Note the clic2023_public bucket.",
    ),
)

# The real download URL is /file-handling/?packageID=N and needs the login session; the URL here
# only names the file (and its path under a mirror).
_CITYSCAPES_ARCHIVE = SourceFile(
    "https://www.cityscapes-dataset.com/file-handling/",
    "leftImg8bit_trainvaltest.zip",
    size_hint="about 11 GB",
)
_CITYSCAPES_INSTRUCTIONS = (
    "Log in at https://www.cityscapes-dataset.com/downloads/ and download the package "
    "'leftImg8bit_trainvaltest.zip' (or use `csDownload leftImg8bit_trainvaltest.zip` from the "
    "cityscapesscripts package). One archive serves the train, val and test splits."
)


def _cityscapes(split: str, count: int) -> CatalogEntry:
    return CatalogEntry(
        name=f"cityscapes-leftimg8bit-{split}",
        title=f"Cityscapes leftImg8bit {split} split (2048x1024 PNG)",
        sources=(_CITYSCAPES_ARCHIVE,),
        licence="Cityscapes terms of use (https://www.cityscapes-dataset.com/license/): "
        "non-commercial research and teaching; account required.",
        homepage="https://www.cityscapes-dataset.com/downloads/",
        access="login",
        image_count=count,
        members=f"leftImg8bit/{split}/",
        notes="The site publishes an md5 only behind the login; this catalog has none, so the "
        "sha256 of the placed archive is trusted on first use. Ids are <city>/<city>_<seq>_<frame>"
        "_leftImg8bit. The Agustsson et al. (2019) setup resamples to 1024x512; rdbench keeps the "
        "original resolution.",
        instructions=_CITYSCAPES_INSTRUCTIONS,
    )


_CITYSCAPES = (_cityscapes("train", 2975), _cityscapes("val", 500), _cityscapes("test", 1525))

_IMAGENET_BASE = "http://www.image-net.org/challenges/LSVRC/2012/nnoupb/"  # historical; now behind a login
_IMAGENET_LICENCE = ("ImageNet terms of access (https://image-net.org/download): non-commercial "
                     "research and educational use; account required.")
_IMAGENET_INSTRUCTIONS = (
    "Register and log in at https://image-net.org/download-images, open the ILSVRC2012 page and "
    "download the file named below."
)

_IMAGENET = (
    CatalogEntry(
        name="imagenet-val",
        title="ImageNet ILSVRC2012 validation images (50,000 JPEGs)",
        sources=(SourceFile(_IMAGENET_BASE, "ILSVRC2012_img_val.tar", size=6744924160,
                            checksum=Checksum("sha256", "c7e06a6c0baccf06d8dbeb6577d71efff84673a5dbdd50633ab44f8ea0456ae0",
                                              "tensorflow/datasets url_checksums/imagenet2012.txt")),),
        licence=_IMAGENET_LICENCE,
        homepage="https://image-net.org/download-images",
        access="login",
        image_count=50000,
        extensions=(".jpeg", ".jpg", ".png"),
        notes="md5 29b22e2961454d5413ddabcf34fc5622 (torchvision). Flat ILSVRC2012_val_*.JPEG.",
        instructions=_IMAGENET_INSTRUCTIONS,
    ),
    CatalogEntry(
        name="imagenet-train",
        title="ImageNet ILSVRC2012 training images (1,281,167 JPEGs)",
        sources=(SourceFile(_IMAGENET_BASE, "ILSVRC2012_img_train.tar", size=147897477120,
                            checksum=Checksum("sha256", "b08200a27a8e34218a0e58fde36b0fe8f73bc377f4acea2d91602057c3ca45bb",
                                              "tensorflow/datasets url_checksums/imagenet2012.txt")),),
        licence=_IMAGENET_LICENCE,
        homepage="https://image-net.org/download-images",
        access="login",
        image_count=1281167,
        extensions=(".jpeg", ".jpg", ".png"),
        nested_archives=True,
        notes="md5 1d675b47d978889d74fa0da5fadfb00e (torchvision). Holds 1000 <wnid>.tar files; "
        "ids are <wnid>/<wnid>_<n>. 22 files are CMYK and one is a PNG (all converted to RGB). "
        "Prepared as PNG this needs several hundred GB.",
        instructions=_IMAGENET_INSTRUCTIONS,
    ),
)

_BSDS500 = CatalogEntry(
    name="bsds500",
    title="Berkeley Segmentation Data Set 500 (BSDS500) images: train 200, val 100, test 200",
    sources=(SourceFile("https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/BSR/",
                        "BSR_bsds500.tgz", size=70763455,
                        checksum=Checksum("sha256", "97e49d31764f3912f0c4122707d53062ac9e783ba0f095e447a4d53c1a41af8e",
                                          "a third-party download script (not confirmed by Berkeley)")),),
    licence="Free for non-commercial research and educational purposes (UC Berkeley); the "
    "photographs come from the Corel collection. Cite Arbelaez et al., TPAMI 2011.",
    homepage="https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/resources.html",
    image_count=500,
    members="BSR/BSDS500/data/images/",
    extensions=(".jpg",),
    notes="481x321 or 321x481 JPEGs; ids are <split>/<id>. For training small models, never an "
    "evaluation set. The size (70,763,455 bytes) is reported by several sources; the sha256 by one.",
)

_TECNICK = CatalogEntry(
    name="tecnick",
    title="Tecnick TESTIMAGES, SAMPLING set: the RGB originals at 1200x1200",
    sources=(SourceFile("https://sourceforge.net/projects/testimages/files/OLD/OLD_SAMPLING/",
                        "testimages.zip/download", filename="tecnick_testimages.zip",
                        size_hint="about 1 GB (not published)"),),
    licence="CC BY-NC-SA 3.0 (Nicola Asuni, Tecnick.com; see the archive's LICENSE.TXT).",
    homepage="https://testimages.org/sampling/",
    image_count=100,
    members="**/RGB/RGB_OR_1200x1200/",
    notes=_TOFU_NOTE + " The archive also holds grey and reduced-size variants; only the RGB originals "
    "(folder RGB/RGB_OR_1200x1200, at whatever depth) are taken. The count of 100 is what papers report.",
)


def _div2k(split: str, size: int, sha256: str, count: int) -> CatalogEntry:
    folder = f"DIV2K_{split}_HR"
    return CatalogEntry(
        name=f"div2k-{split}",
        title=f"DIV2K {split} set, high resolution ({count} images, 2K)",
        sources=(SourceFile("https://data.vision.ee.ethz.ch/cvl/DIV2K/", f"{folder}.zip", size=size,
                            checksum=Checksum("sha256", sha256, "tensorflow/datasets url_checksums/div2k.txt")),),
        licence="For academic research only (NTIRE 2017 / DIV2K terms, ETH Zurich).",
        homepage="https://data.vision.ee.ethz.ch/cvl/DIV2K/",
        image_count=count,
        members=f"{folder}/",
        notes="PNG, about 2040 px on the longer side. Cite Agustsson and Timofte, CVPRW 2017.",
    )


_DIV2K = (
    _div2k("valid", 448993893, "20dd31fd84d777bc1cf5d6b7654a3f569c0aec74458ae094122ad1d0489900fc", 100),
    _div2k("train", 3530603713, "9d0b9c463f6e35b6c62cc6a930ee2224f670b34c1df841a57670f9acf0f6c335", 800),
)

_BUILTIN: tuple[CatalogEntry, ...] = (_KODAK, *_CLIC2020, *_CLIC_LATER, *_CITYSCAPES, *_IMAGENET, _BSDS500, _TECNICK,
                                      *_DIV2K)

_ENTRIES: dict[str, CatalogEntry] = {e.name: e for e in _BUILTIN}

#: Read-only view of every catalogued dataset, by name (built-ins plus :func:`register`\ ed ones).
CATALOG: Mapping[str, CatalogEntry] = MappingProxyType(_ENTRIES)

#: Names that are not catalog entries but are valid dataset specs (see rdbench.datasets).
LOCAL_SPECS = ("sample", "folder:PATH", "glob:PATTERN")

_NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]*")


def register(entry: CatalogEntry, *, replace: bool = False) -> CatalogEntry:
    """Add ``entry`` to the catalog (``replace=True`` to overwrite an existing name)."""
    if not _NAME_RE.fullmatch(entry.name) or entry.name == "sample":
        raise ValueError(f"invalid dataset name {entry.name!r}: use lowercase letters, digits, '.', '_', '-'")
    if entry.name in _ENTRIES and not replace:
        raise ValueError(f"dataset {entry.name!r} is already catalogued")
    _ENTRIES[entry.name] = entry
    return entry


def unregister(name: str) -> None:
    """Remove a dataset from the catalog (no error when absent)."""
    _ENTRIES.pop(name, None)


def is_catalogued(name: str) -> bool:
    """True when ``name`` is a catalog entry (``sample``, ``folder:`` and ``glob:`` are not)."""
    return name in _ENTRIES


def catalog_names() -> list[str]:
    """Every catalogued dataset name, sorted."""
    return sorted(_ENTRIES)


def known_specs_message() -> str:
    return "known datasets: " + ", ".join([*LOCAL_SPECS, *catalog_names()])


def prepare_command(name: str, data_root: str | os.PathLike | None = None) -> str:
    """The command that prepares ``name`` (with ``--data-root`` unless it is the default)."""
    cmd = f"luigi --module pipelines PrepareDataset --name {name} --local-scheduler"
    if data_root is not None and os.path.normpath(str(data_root)) != "datasets":
        cmd += f" --data-root {data_root}"
    return cmd


def get_entry(name: str) -> CatalogEntry:
    """The catalog entry for ``name``; unknown names raise DatasetError listing the known ones."""
    try:
        return _ENTRIES[name]
    except KeyError:
        from rdbench.datasets.base import DatasetError

        raise DatasetError(f"unknown dataset {name!r}; {known_specs_message()}") from None


def entries(names: Iterable[str] | None = None) -> list[CatalogEntry]:
    """Entries for ``names`` (all when None), in the given or sorted order."""
    return [get_entry(n) for n in (names if names is not None else catalog_names())]
