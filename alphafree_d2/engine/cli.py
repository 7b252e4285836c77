"""The command lines of the tools, the train script and the benchmarks, in one place.

- Config overrides (``path.key=value``) may come before, between or after the options:
  :func:`parse_args` takes them out of the command line wherever they are (also out of an
  option's list, e.g. ``--input a.jpg b.jpg train.init_checkpoint=X --16bit``), and gives them to
  the parser's ``opts``. A token is an override when it reads as ``key=value`` with a dotted
  Python-name key (``+key=value`` adds a key) and is not an existing file, and it is not the
  value of an option that takes a fixed number of values. Everything after ``--`` is an
  override.
- :func:`load_config`: the LazyConfig file, then the overrides through
  :func:`~alphafree_d2.engine.config_checks.apply_overrides` (checked; non-ASCII values work),
  every mistake a :class:`ConfigError`.
- :func:`expected_errors`: errors a user can fix (a config mistake, a refused checkpoint or
  folder, a bad dataset file, a full disk) end with one ``error: ...`` line and exit status 2,
  Ctrl+C with ``interrupted`` and 130; no traceback unless ``--debug`` or
  ``ALPHAFREE_DEBUG=1``.
"""

import contextlib
import errno
import logging
import os
import re
import sys

from detectron2.config import LazyConfig

from .config_checks import ConfigError, apply_overrides

__all__ = [
    "DEBUG_ENV",
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "is_override",
    "split_overrides",
    "add_overrides_argument",
    "add_debug_argument",
    "parse_args",
    "load_config",
    "debug_enabled",
    "expected_error_types",
    "is_expected_error",
    "expected_errors",
    "hide_expected_tracebacks",
]

DEBUG_ENV = "ALPHAFREE_DEBUG"
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a command stopped by Ctrl+C

_OVERRIDE = re.compile(r"^\+?[A-Za-z_]\w*(\.\w+)*=")


def is_override(text):
    """Whether a command-line token is a config override ``key=value`` (module docstring)."""
    return _OVERRIDE.match(text) is not None and not os.path.exists(text)


def _option_action(parser, token):
    """(the parser's action for an option token, whether the token carries its value after
    '='), or (None, False) for a token that names no option (argparse then reports it)."""
    actions = parser._option_string_actions
    name, sep, _ = token.partition("=") if token.startswith("--") else (token, "", "")
    if name in actions:
        return actions[name], bool(sep)
    if name.startswith("--") and parser.allow_abbrev:
        matches = {a for s, a in actions.items() if s.startswith(name)}
        if len(matches) == 1:
            return matches.pop(), bool(sep)
    return None, False


def split_overrides(parser, argv):
    """(the options for ``parser``, the overrides) of the command line ``argv``."""
    options, overrides = [], []
    pending = 0  # values still owed to the last option (they are never overrides)
    tokens = iter(argv)
    for token in tokens:
        if pending:
            options.append(token)
            pending -= 1
        elif token == "--":
            overrides.extend(tokens)
        elif token.startswith("-") and len(token) > 1 and not _is_number(token):
            options.append(token)
            action, inline = _option_action(parser, token)
            if action is not None and not inline:
                nargs = action.nargs
                pending = 1 if nargs is None else nargs if isinstance(nargs, int) else 0
        elif is_override(token):
            overrides.append(token)
        else:
            options.append(token)
    return options, overrides


def _is_number(token):
    try:
        float(token)
        return True
    except ValueError:
        return False


def add_overrides_argument(parser):
    """Add the ``opts`` positional (config overrides, anywhere on the command line)."""
    parser.add_argument(
        "opts",
        nargs="*",
        metavar="KEY=VALUE",
        help="config overrides 'path.key=value', e.g. train.init_checkpoint=model_final.pth, "
        "before or after the options",
    )
    return parser


def parse_args(parser, argv=None):
    """``parser.parse_args`` with the overrides anywhere (module docstring) in ``args.opts``.
    Also sets ``ALPHAFREE_DEBUG=1`` for this process and those it starts when the parser has a
    ``--debug`` option and it is given."""
    argv = sys.argv[1:] if argv is None else list(argv)
    options, overrides = split_overrides(parser, argv)
    args = parser.parse_args(options)
    args.opts = list(getattr(args, "opts", None) or []) + overrides
    if getattr(args, "debug", False):
        os.environ[DEBUG_ENV] = "1"
    return args


def add_debug_argument(parser):
    """Add ``--debug``: show the traceback of expected errors (see :func:`expected_errors`)."""
    parser.add_argument(
        "--debug",
        action="store_true",
        help=f"show the traceback of expected errors too (or set {DEBUG_ENV}=1)",
    )
    return parser


def load_config(config_file, overrides=()):
    """The LazyConfig ``config_file`` with ``overrides`` applied and checked (module docstring).

    Raises:
        ConfigError: a missing config file, or an override or setting that is unknown, of the
            wrong type, impossible or unreadable (the message says how to fix it).
    """
    if not os.path.isfile(config_file):
        raise ConfigError(f"--config-file {config_file}: no such file")
    return apply_overrides(LazyConfig.load(config_file), list(overrides))


def debug_enabled():
    """Whether expected errors show their traceback (``ALPHAFREE_DEBUG`` set, not 0)."""
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def expected_error_types():
    """The exception types that :func:`expected_errors` reports as one line."""
    from ..checkpoint.matting_checkpointer import CheckpointError
    from ..data.datasets.builtin import DatasetsRootError
    from ..data.io import ImageTooLargeError
    from ..data.preflight import DatasetCheckError
    from ..utils.file_io import DiskFullError
    from .run_folder import OutputFolderError

    return (
        ConfigError,
        CheckpointError,
        DatasetCheckError,
        DatasetsRootError,
        ImageTooLargeError,
        DiskFullError,
        OutputFolderError,
    )


def is_expected_error(error):
    if isinstance(error, expected_error_types()):
        return True
    return isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)


@contextlib.contextmanager
def expected_errors():
    """Turn expected errors (:func:`expected_error_types`, a full disk) into ``error: message``
    on stderr and ``SystemExit(2)``, and Ctrl+C into ``interrupted`` and ``SystemExit(130)``; other
    exceptions, and everything when :func:`debug_enabled`, propagate with their traceback."""
    try:
        yield
    except KeyboardInterrupt:
        if debug_enabled():
            raise
        print("\ninterrupted (Ctrl+C)", file=sys.stderr, flush=True)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as e:
        if debug_enabled() or not is_expected_error(e):
            raise
        print(f"error: {e}", file=sys.stderr, flush=True)
        sys.exit(EXIT_ERROR)


class _HideExpectedTracebacks(logging.Filter):
    def filter(self, record):
        if record.exc_info and not debug_enabled() and is_expected_error(record.exc_info[1]):
            record.exc_info = None
            record.exc_text = None
        return True


def hide_expected_tracebacks(logger_name="detectron2.engine.train_loop"):
    """detectron2's trainer logs every exception with its traceback ("Exception during
    training:") before re-raising it; for expected errors keep the line, drop the traceback
    (the error's own message follows from :func:`expected_errors`)."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, _HideExpectedTracebacks) for f in logger.filters):
        logger.addFilter(_HideExpectedTracebacks())
