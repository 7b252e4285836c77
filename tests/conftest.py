import os
import tempfile

# Tests must never write into the checkout's datasets/ folder: the demo data and any
# registered fake trees go to a per-session temporary root unless the caller chose one.
os.environ.setdefault("DETECTRON2_DATASETS", tempfile.mkdtemp(prefix="alphafree_d2_datasets_"))
