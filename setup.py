#!/usr/bin/env python
"""alphafree_d2: train image-matting models on trimaps only, inside detectron2.

detectron2 itself is not on PyPI; ``tools/setup_env.sh`` installs it (see docs/install.md).
"""

from setuptools import find_packages, setup

setup(
    name="alphafree_d2",
    version="0.1.0",
    description="Alpha-free matting (known + DDC losses) as a detectron2 plugin",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=find_packages(include=["alphafree_d2", "alphafree_d2.*"]),
    # The demo page's HTML, JavaScript and CSS (tools/demo_app.py).
    package_data={"alphafree_d2.app": ["static/*"]},
    install_requires=[
        "torch>=2.1",
        "torchvision>=0.16",
        "fvcore>=0.1.5.post20221221",
        "iopath>=0.1.9",
        # detectron2's LazyConfig is written against omegaconf 2.1-2.3.
        "omegaconf>=2.1,<2.4",
        "hydra-core>=1.1",
        "timm>=0.9",
        "opencv-python-headless>=4.5",
        "numpy>=1.23",
        "pycocotools>=2.0.2",
        "scipy>=1.9",
        "scikit-image>=0.21",
        "tensorboard>=2.10",
        "tqdm>=4.29",
        "pymatting>=1.1.8",
        # compiled CPU kernels of the DDC losses (wheels, nothing to build at install)
        "numba>=0.59",
        # detectron2.model_zoo imports pkg_resources, which setuptools 81 removed.
        "setuptools<81",
    ],
    extras_require={
        "export": ["onnx>=1.15", "onnxruntime>=1.17", "onnxscript>=0.1"],
        # tools/demo_app.py: the local web page (alphafree_d2.app).
        "demo": ["starlette>=0.37", "uvicorn>=0.27"],
        # tools/export.py --format hf, tools/convert_pretrained.py --format hf-vitmatte
        # (alphafree_d2/inference/hf.py; tested with transformers 5.25, safetensors 0.8).
        "hf": ["transformers>=5.0,<6", "safetensors>=0.4.3"],
        # httpx: starlette's TestClient; selenium: the demo page's browser test, which also
        # needs Chromium and its driver (Debian: apt-get install chromium chromium-driver).
        "test": ["pytest>=7", "pytest-timeout>=2", "httpx>=0.27", "selenium>=4.15", "ruff>=0.9"],
    },
)
