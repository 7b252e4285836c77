"""Built-in matting datasets, registered on import under ``$DETECTRON2_DATASETS`` (default
``datasets``). Registration is lazy: folders are read (and the demo generated) at the first
``DatasetCatalog.get(name)``. See ``datasets/README.md`` for the layouts and how to prepare them.
A root that is a file, that cannot be created for the demo data, or a dataset folder that is
missing is a :class:`DatasetsRootError` naming the variable and what it must be.
"""

import os
from dataclasses import dataclass
from typing import Optional

from detectron2.data import DatasetCatalog, MetadataCatalog

from ...utils.file_io import DiskFullError
from .demo import DEMO_DIRNAME, ensure_demo_dataset
from .register_matting import load_matting_folder

__all__ = [
    "DatasetsRootError",
    "BUILTIN_DATASETS",
    "BuiltinMattingDataset",
    "default_datasets_root",
    "register_all_matting_datasets",
]

_AM2K_LAYOUT = """\
  AM-2K/
    train/original/*.jpg            images
    train/mask/*.png                alpha mattes (only used to generate the trimap labels)
    train/trimap_generated/*.png    trimap labels: python datasets/prepare_matting_trimaps.py am2k
    train/trimap_generated_k<K>/    (Table 6 only) ... am2k --kernel-size K, K in 10, 20, 30
    train/mask_generated/           (Table 7 only) ... am2k --mask
    train/trimap_generated_official/  (am2k_ddc_official.py only) ... am2k --official
    validation/original/*.jpg
    validation/mask/*.png
    validation/trimap/*.png"""

_P3M_LAYOUT = """\
  P3M-10k/
    train/blurred_image/*.jpg       images
    train/mask/*.png                alpha mattes (only used to generate the trimap labels)
    train/trimap_generated/*.png    trimap labels: python datasets/prepare_matting_trimaps.py p3m10k
    train/trimap_generated_official/  (official-code labels only) ... p3m10k --official
    validation/P3M-500-NP/{original_image,mask,trimap}/
    validation/P3M-500-P/{blurred_image,mask,trimap}/"""


_MY_MATTING_LAYOUT = """\
  my_matting/                       your own data (configs/finetune_vitmatte_ddc.py)
    train/image/*.jpg|png           photos
    train/trimap/*.png              their trimaps, same stems: 0 background, 128 unknown, 255 fg
    val/image/, val/trimap/, val/alpha/   a few photos with ground-truth alpha, for the metrics"""


class DatasetsRootError(FileNotFoundError):
    """The datasets root (``$DETECTRON2_DATASETS``) or a built-in dataset's folder is not
    usable; the message says what it must be."""

    def __str__(self):
        return self.args[0]


def _root_name(root):
    """How messages name the root: with the variable when it comes from there."""
    variable = os.getenv("DETECTRON2_DATASETS")
    if variable is not None and os.path.expanduser(variable) == root:
        return f"DETECTRON2_DATASETS={variable}"
    return f"the datasets root {root}"


def _check_root(root):
    if os.path.exists(root) and not os.path.isdir(root):
        raise DatasetsRootError(
            f"{_root_name(root)}: {root} is a file, not a folder. It must be the folder that "
            "holds the datasets (see datasets/README.md), e.g. export "
            "DETECTRON2_DATASETS=$HOME/datasets, or unset it to use ./datasets"
        )


@dataclass(frozen=True)
class BuiltinMattingDataset:
    """A built-in dataset: folders relative to the datasets root, and how to make missing labels.

    Attributes:
        name: the name registered in ``DatasetCatalog``.
        layout: the expected folder tree, shown when a folder is missing.
        image_dir, trimap_dir, alpha_dir: folders of images, trimap labels and (optional) alpha
            mattes; files pair up by stem (:func:`load_matting_folder`).
        prepare_args: arguments of ``datasets/prepare_matting_trimaps.py`` that generate
            ``trimap_dir`` from the alpha mattes, when the labels are generated (None otherwise).
    """

    name: str
    layout: str
    image_dir: str
    trimap_dir: str
    alpha_dir: Optional[str] = None
    prepare_args: Optional[str] = None


_AM2K_TRAIN_IMAGES = "AM-2K/train/original"


def _am2k_val():
    root = "AM-2K/validation"
    return BuiltinMattingDataset(
        "am2k_val", _AM2K_LAYOUT, f"{root}/original", f"{root}/trimap", f"{root}/mask"
    )


def _p3m_val(name, folder, images):
    root = f"P3M-10k/validation/{folder}"
    return BuiltinMattingDataset(
        name, _P3M_LAYOUT, f"{root}/{images}", f"{root}/trimap", f"{root}/mask"
    )


BUILTIN_DATASETS = (
    BuiltinMattingDataset(
        "am2k_train",
        _AM2K_LAYOUT,
        _AM2K_TRAIN_IMAGES,
        "AM-2K/train/trimap_generated",
        prepare_args="am2k",
    ),
    _am2k_val(),
    # Ablation labels of the same training images (paper Tables 1, 6, 7). am2k_train_alpha: the
    # ground-truth mattes themselves (no preparation beyond the default trimaps); the others are
    # made by datasets/prepare_matting_trimaps.py am2k --mask / --kernel-size K.
    BuiltinMattingDataset(
        "am2k_train_alpha",
        _AM2K_LAYOUT,
        _AM2K_TRAIN_IMAGES,
        "AM-2K/train/trimap_generated",
        "AM-2K/train/mask",
        prepare_args="am2k",
    ),
    BuiltinMattingDataset(
        "am2k_train_mask",
        _AM2K_LAYOUT,
        _AM2K_TRAIN_IMAGES,
        "AM-2K/train/mask_generated",
        prepare_args="am2k --mask",
    ),
    *(
        BuiltinMattingDataset(
            f"am2k_train_trimap_k{k}",
            _AM2K_LAYOUT,
            _AM2K_TRAIN_IMAGES,
            f"AM-2K/train/trimap_generated_k{k}",
            prepare_args=f"am2k --kernel-size {k}",
        )
        for k in (10, 20, 30)
    ),
    # Labels made as the official alpha2trimap.py makes them (--official; am2k_ddc_official.py).
    BuiltinMattingDataset(
        "am2k_train_trimap_official",
        _AM2K_LAYOUT,
        _AM2K_TRAIN_IMAGES,
        "AM-2K/train/trimap_generated_official",
        prepare_args="am2k --official",
    ),
    BuiltinMattingDataset(
        "p3m10k_train_trimap_official",
        _P3M_LAYOUT,
        "P3M-10k/train/blurred_image",
        "P3M-10k/train/trimap_generated_official",
        prepare_args="p3m10k --official",
    ),
    BuiltinMattingDataset(
        "p3m10k_train",
        _P3M_LAYOUT,
        "P3M-10k/train/blurred_image",
        "P3M-10k/train/trimap_generated",
        prepare_args="p3m10k",
    ),
    _p3m_val("p3m500np_val", "P3M-500-NP", "original_image"),
    _p3m_val("p3m500p_val", "P3M-500-P", "blurred_image"),
    # Your own folders (images + trimaps; alpha only to evaluate), e.g. to fine-tune a
    # pretrained ViTMatte with configs/finetune_vitmatte_ddc.py.
    BuiltinMattingDataset(
        "my_matting_train", _MY_MATTING_LAYOUT, "my_matting/train/image", "my_matting/train/trimap"
    ),
    BuiltinMattingDataset(
        "my_matting_val",
        _MY_MATTING_LAYOUT,
        "my_matting/val/image",
        "my_matting/val/trimap",
        "my_matting/val/alpha",
    ),
)


def default_datasets_root():
    """``$DETECTRON2_DATASETS`` (``~`` expanded), or ``datasets`` when it is not set."""
    return os.path.expanduser(os.getenv("DETECTRON2_DATASETS", "datasets"))


def _load_builtin(dataset: BuiltinMattingDataset, name, root):
    _check_root(root)
    if not os.path.isdir(root):
        raise DatasetsRootError(
            f"{_root_name(root)}: the folder {root} does not exist. It must be the folder that "
            f"holds the datasets; dataset '{name}' expects its images in "
            f"{os.path.join(root, dataset.image_dir)}, in this layout:\n{dataset.layout}\n"
            "See datasets/README.md."
        )
    folders = (dataset.image_dir, dataset.trimap_dir, dataset.alpha_dir)
    for folder in folders:
        path = None if folder is None else os.path.join(root, folder)
        if path is not None and not os.path.isdir(path):
            hint = ""
            if folder == dataset.trimap_dir and dataset.prepare_args is not None:
                hint = (
                    "\nThe training trimap labels are generated once from the alpha mattes: "
                    f"python datasets/prepare_matting_trimaps.py --root {root} "
                    + dataset.prepare_args
                )
            raise DatasetsRootError(
                f"{path}: folder not found. Dataset '{name}' expects, under {root} "
                f"($DETECTRON2_DATASETS):\n{dataset.layout}{hint}\nSee datasets/README.md."
            )
    return load_matting_folder(*(None if f is None else os.path.join(root, f) for f in folders))


def _load_demo(root, split):
    _check_root(root)
    try:
        folder = os.path.join(ensure_demo_dataset(root), split)
    except DiskFullError:
        raise
    except OSError as e:
        raise DatasetsRootError(
            f"{_root_name(root)}: the demo data cannot be generated in {root} ({e}). It must "
            "be a folder you can write to (the demo data is generated there at its first use), "
            "or unset it to use ./datasets"
        ) from e
    return load_matting_folder(
        os.path.join(folder, "image"), os.path.join(folder, "trimap"), os.path.join(folder, "alpha")
    )


def register_all_matting_datasets(root=None, prefix=""):
    """Register the built-in datasets (``demo_train``, ``demo_val``, ``am2k_train``, ``am2k_val``,
    ``p3m10k_train``, ``p3m500np_val``, ``p3m500p_val``, ``my_matting_train``,
    ``my_matting_val``) under ``root`` (default:
    ``$DETECTRON2_DATASETS`` or ``datasets``), each name preceded by ``prefix``."""
    root = default_datasets_root() if root is None else root
    for dataset in BUILTIN_DATASETS:
        name = prefix + dataset.name
        DatasetCatalog.register(name, lambda d=dataset, n=name: _load_builtin(d, n, root))
        MetadataCatalog.get(name).set(
            evaluator_type="matting",
            image_root=os.path.join(root, dataset.image_dir),
            trimap_root=os.path.join(root, dataset.trimap_dir),
            alpha_root=None if dataset.alpha_dir is None else os.path.join(root, dataset.alpha_dir),
        )
    for split in ("train", "val"):
        folder = os.path.join(root, DEMO_DIRNAME, split)
        DatasetCatalog.register(f"{prefix}demo_{split}", lambda s=split: _load_demo(root, s))
        MetadataCatalog.get(f"{prefix}demo_{split}").set(
            evaluator_type="matting",
            image_root=os.path.join(folder, "image"),
            trimap_root=os.path.join(folder, "trimap"),
            alpha_root=os.path.join(folder, "alpha"),
        )


if __name__.endswith(".builtin"):
    # Assume pre-defined datasets live in `./datasets`.
    register_all_matting_datasets(default_datasets_root())
