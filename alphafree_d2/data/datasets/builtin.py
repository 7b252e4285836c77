"""Built-in matting datasets, registered on import under ``$DETECTRON2_DATASETS`` (default
``datasets``). Registration is lazy: folders are read (and the demo generated) at the first
``DatasetCatalog.get(name)``. See ``datasets/README.md`` for the layouts and how to prepare them.
"""

import os

from detectron2.data import DatasetCatalog, MetadataCatalog

from .demo import DEMO_DIRNAME, ensure_demo_dataset
from .register_matting import load_matting_folder

__all__ = ["register_all_matting_datasets"]

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

# name: (layout, image folder, trimap folder, alpha folder or None), relative to the root.
_PREDEFINED = {
    "am2k_train": (_AM2K_LAYOUT, "AM-2K/train/original", "AM-2K/train/trimap_generated", None),
    "am2k_val": (
        _AM2K_LAYOUT,
        "AM-2K/validation/original",
        "AM-2K/validation/trimap",
        "AM-2K/validation/mask",
    ),
    # Ablation labels of the same training images (paper Tables 1, 6, 7), made by
    # datasets/prepare_matting_trimaps.py with --alpha-labels / --kernel-size K / --mask.
    "am2k_train_alpha": (
        _AM2K_LAYOUT,
        "AM-2K/train/original",
        "AM-2K/train/trimap_generated",
        "AM-2K/train/mask",
    ),
    "am2k_train_mask": (_AM2K_LAYOUT, "AM-2K/train/original", "AM-2K/train/mask_generated", None),
    **{
        f"am2k_train_trimap_k{k}": (
            _AM2K_LAYOUT,
            "AM-2K/train/original",
            f"AM-2K/train/trimap_generated_k{k}",
            None,
        )
        for k in (10, 20, 30)
    },
    # Labels made as the official alpha2trimap.py makes them (--official; am2k_ddc_official.py).
    "am2k_train_trimap_official": (
        _AM2K_LAYOUT,
        "AM-2K/train/original",
        "AM-2K/train/trimap_generated_official",
        None,
    ),
    "p3m10k_train_trimap_official": (
        _P3M_LAYOUT,
        "P3M-10k/train/blurred_image",
        "P3M-10k/train/trimap_generated_official",
        None,
    ),
    "p3m10k_train": (
        _P3M_LAYOUT,
        "P3M-10k/train/blurred_image",
        "P3M-10k/train/trimap_generated",
        None,
    ),
    "p3m500np_val": (
        _P3M_LAYOUT,
        "P3M-10k/validation/P3M-500-NP/original_image",
        "P3M-10k/validation/P3M-500-NP/trimap",
        "P3M-10k/validation/P3M-500-NP/mask",
    ),
    "p3m500p_val": (
        _P3M_LAYOUT,
        "P3M-10k/validation/P3M-500-P/blurred_image",
        "P3M-10k/validation/P3M-500-P/trimap",
        "P3M-10k/validation/P3M-500-P/mask",
    ),
}


def _default_root():
    return os.path.expanduser(os.getenv("DETECTRON2_DATASETS", "datasets"))


def _prepare_flags(folder):
    if folder.endswith("mask_generated"):
        return " --mask"
    if folder.endswith("_official"):
        return " --official"
    if "_k" in os.path.basename(folder):
        return " --kernel-size " + folder.rsplit("_k", 1)[1]
    return ""


def _load_predefined(name, root, layout, image_dir, trimap_dir, alpha_dir):
    for folder in (image_dir, trimap_dir, alpha_dir):
        path = None if folder is None else os.path.join(root, folder)
        if path is not None and not os.path.isdir(path):
            hint = ""
            if "_generated" in folder:
                hint = (
                    "\nThe training trimap labels are generated once from the alpha mattes: "
                    f"python datasets/prepare_matting_trimaps.py --root {root} "
                    + ("am2k" if name.startswith("am2k") else "p3m10k")
                    + _prepare_flags(folder)
                )
            raise FileNotFoundError(
                f"{path}: folder not found. Dataset '{name}' expects, under {root} "
                f"($DETECTRON2_DATASETS):\n{layout}{hint}\nSee datasets/README.md."
            )
    return load_matting_folder(
        os.path.join(root, image_dir),
        os.path.join(root, trimap_dir),
        None if alpha_dir is None else os.path.join(root, alpha_dir),
    )


def _load_demo(root, split):
    folder = os.path.join(ensure_demo_dataset(root), split)
    return load_matting_folder(
        os.path.join(folder, "image"), os.path.join(folder, "trimap"), os.path.join(folder, "alpha")
    )


def register_all_matting_datasets(root=None, prefix=""):
    """Register the built-in datasets (``demo_train``, ``demo_val``, ``am2k_train``, ``am2k_val``,
    ``p3m10k_train``, ``p3m500np_val``, ``p3m500p_val``) under ``root`` (default:
    ``$DETECTRON2_DATASETS`` or ``datasets``), each name preceded by ``prefix``."""
    root = _default_root() if root is None else root
    for name, (layout, image_dir, trimap_dir, alpha_dir) in _PREDEFINED.items():
        DatasetCatalog.register(
            prefix + name,
            lambda n=prefix + name, a=(layout, image_dir, trimap_dir, alpha_dir): _load_predefined(
                n, root, *a
            ),
        )
        MetadataCatalog.get(prefix + name).set(
            evaluator_type="matting",
            image_root=os.path.join(root, image_dir),
            trimap_root=os.path.join(root, trimap_dir),
            alpha_root=None if alpha_dir is None else os.path.join(root, alpha_dir),
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
    register_all_matting_datasets(_default_root())
