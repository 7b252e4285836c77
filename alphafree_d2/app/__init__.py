"""A local web page to look at trained matting models on one's own photos, and to paint trimaps
for trimap-guided models (``tools/demo_app.py``; user guide: docs/web_page.md).

Needs the ``demo`` extra (``pip install -e .[demo]``: starlette, uvicorn); nothing here is
imported by the rest of the package.

    from alphafree_d2.app import DemoModel, create_app
    app = create_app([DemoModel("A", MattingPredictor(cfg))])   # an ASGI application
"""

from .examples import Example, builtin_examples, folder_examples
from .guard import REQUEST_HEADER, allowed_hosts
from .matting_app import create_app
from .models import load_demo_models, warm_up
from .server import bind_socket, serve, url_of
from .service import DemoModel, PredictOptions

__all__ = [
    "DemoModel",
    "PredictOptions",
    "Example",
    "create_app",
    "builtin_examples",
    "folder_examples",
    "allowed_hosts",
    "REQUEST_HEADER",
    "load_demo_models",
    "warm_up",
    "bind_socket",
    "serve",
    "url_of",
]
