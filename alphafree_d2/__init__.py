"""alphafree_d2: train image-matting models on trimaps only, as a detectron2 plugin.

``import alphafree_d2`` registers everything the plugin adds to detectron2's registries and
catalogs (datasets, the meta-architecture) and re-exports the public API.
"""
__version__ = "0.1.0"
