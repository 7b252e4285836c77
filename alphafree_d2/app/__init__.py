"""A local web page to look at trained matting models on one's own photos (``tools/demo_app.py``).

Needs the ``demo`` extra (``pip install -e .[demo]``: starlette, uvicorn); nothing here is
imported by the rest of the package.

    from alphafree_d2.app import DemoModel, create_app
    app = create_app([DemoModel("A", MattingPredictor(cfg))])   # an ASGI application
"""

from .examples import builtin_examples, folder_examples
from .matting_app import DemoModel, create_app
from .server import bind_socket, serve, url_of

__all__ = [
    "DemoModel",
    "create_app",
    "builtin_examples",
    "folder_examples",
    "bind_socket",
    "serve",
    "url_of",
]
