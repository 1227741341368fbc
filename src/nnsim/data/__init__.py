"""Dataset readers: Fashion-MNIST IDX files, class folders of PNGs, eval images.

Everything here returns plain numpy arrays in small records; nothing knows the
simulation kernel. See `load_split` for the one call most code needs.
"""

from nnsim.data.classes import (
    CLASS_NAMES,
    DEFAULT_FASHION_MNIST_DIR,
    FASHION_MNIST_DIR_ENV,
    IMAGE_SHAPE,
    class_from_file_name,
    class_index,
    default_dataset_dir,
)
from nnsim.data.dataset import (
    find_idx_files,
    hold_out,
    load_split,
    read_idx_split,
    scale_pixels,
    select_per_class,
)
from nnsim.data.export import export_png
from nnsim.data.idx import read_idx, write_idx
from nnsim.data.images import read_class_folders, read_eval_folder
from nnsim.data.records import EvalImages, LabeledImages

__all__ = [
    "CLASS_NAMES",
    "DEFAULT_FASHION_MNIST_DIR",
    "FASHION_MNIST_DIR_ENV",
    "IMAGE_SHAPE",
    "EvalImages",
    "LabeledImages",
    "class_from_file_name",
    "class_index",
    "default_dataset_dir",
    "export_png",
    "find_idx_files",
    "hold_out",
    "load_split",
    "read_class_folders",
    "read_eval_folder",
    "read_idx",
    "read_idx_split",
    "scale_pixels",
    "select_per_class",
    "write_idx",
]
