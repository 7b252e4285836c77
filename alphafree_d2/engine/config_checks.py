"""Checked command-line overrides and settings, so that a typo or an impossible value stops the
run at once with the name of the setting, instead of being ignored or failing later with an
error about something else.

- An override naming a key the config does not have is an error that suggests the closest
  existing key (``train.max_itr=5`` -> "did you mean 'train.max_iter'?"). New keys are accepted
  where they are meaningful: arguments of a ``LazyCall`` target (its signature accepts them; for
  a target taking ``**kwargs``, any name not within a typo of one the node has) and entries of a
  dict passed to one (e.g. ``model.criterion.losses.dc=10``); ``+key=value`` adds any key on
  purpose (hydra's syntax).
- An override that gives text or a list to a number or a boolean setting is an error.
- Known settings must have possible values (:data:`SETTING_CHECKS`): positive batch size,
  epochs, iterations, periods, learning rate, pixel cap; finite loss weights. They are checked
  on the final config, so values from the config file itself are checked too.
- Values are read with hydra's override grammar (numbers, booleans, lists, quoted text). A
  plain value that the grammar cannot read as it stands (non-ASCII letters as in
  ``train.output_dir=/tmp/ü``, brackets or ``=`` inside a path) is taken as text, exactly as
  typed. What still cannot be read (an unclosed list, a comma that would make a hydra sweep) is
  a :class:`ConfigError` that shows how to write it.
"""

import difflib
import inspect
import math
import re
from typing import List

from omegaconf import OmegaConf

from detectron2.config import LazyConfig

__all__ = [
    "ConfigError",
    "apply_overrides",
    "check_config",
    "normalize_overrides",
    "SETTING_CHECKS",
]

_ABSENT = object()


class ConfigError(ValueError):
    """A config setting or override is unknown, of the wrong type, or impossible."""


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _positive_number(v):
    return _is_number(v) and math.isfinite(v) and v > 0


def _non_negative_number(v):
    return _is_number(v) and math.isfinite(v) and v >= 0


def _positive_int(v):
    return _is_int(v) and v >= 1


def _none_or_positive_int(v):
    return v is None or _positive_int(v)


def _non_negative_int(v):
    return _is_int(v) and v >= 0


# (setting, test, what is expected). A setting the config does not have is not checked.
SETTING_CHECKS = [
    ("train.max_iter", _none_or_positive_int, "None (iterations from train.epochs) or an integer >= 1"),
    ("train.eval_period_epochs", _non_negative_number, "a number of epochs >= 0 (0: evaluate at the end only)"),
    ("train.checkpointer.period_epochs", _non_negative_number, "a number of epochs >= 0 (0: checkpoint at the end only)"),
    ("train.checkpointer.max_to_keep", _none_or_positive_int, "None (keep all) or an integer >= 1"),
    ("train.log_period", _positive_int, "an integer >= 1 (iterations between log lines)"),
    ("dataloader.train.total_batch_size", _positive_int, "an integer >= 1 (images per iteration, all processes together)"),
    ("dataloader.train.num_workers", _non_negative_int, "an integer >= 0"),
    ("dataloader.test.num_workers", _non_negative_int, "an integer >= 0"),
    ("optimizer.lr", _positive_number, "a finite number > 0"),
    ("dataloader.max_pixels", _none_or_positive_int, "None (the default cap, 100 megapixels) or an integer >= 1 (pixels per image)"),
]  # fmt: skip


def _select(cfg, key):
    return OmegaConf.select(cfg, key, default=_ABSENT, throw_on_missing=False)


def check_config(cfg):
    """Raise :class:`ConfigError` listing every impossible value of :data:`SETTING_CHECKS`,
    ``train.epochs`` (> 0 when ``train.max_iter`` is None) and the loss weights
    ``model.criterion.losses.*`` (finite numbers)."""
    problems = []

    def expect(key, value, ok, what):
        if value is not _ABSENT and not ok(value):
            problems.append(f"{key}={value!r}: expected {what}")

    for key, ok, what in SETTING_CHECKS:
        expect(key, _select(cfg, key), ok, what)
    if _select(cfg, "train.max_iter") is None:
        epochs = _select(cfg, "train.epochs")
        expect(
            "train.epochs",
            epochs,
            _positive_number,
            "a number of epochs > 0 (or set train.max_iter)",
        )
    losses = _select(cfg, "model.criterion.losses")
    if OmegaConf.is_dict(losses):
        for name in losses:
            value = losses[name]
            ok = lambda v: _is_number(v) and math.isfinite(v)  # noqa: E731 (sign: MattingCriterion)
            expect(f"model.criterion.losses.{name}", value, ok, "a finite number (the loss weight)")
    if problems:
        raise ConfigError("invalid config settings:\n  " + "\n  ".join(problems))


_OVERRIDE_FIX = (
    "Write key=value; put text with spaces, commas or brackets in quotes, e.g. "
    "\"train.output_dir='out/run (2)'\" (the outer quotes are for the shell), and a list as "
    "key=[1,2]."
)


def _quote(value):
    """``value`` as a hydra quoted string that reads back exactly (backslashes before a quote
    or at the end are doubled, quotes escaped)."""
    escaped = re.sub(r"(\\*)('|$)", lambda m: m.group(1) * 2 + ("\\'" if m.group(2) else ""), value)
    return f"'{escaped}'"


def _read_override(parser, text):
    """(text as hydra reads it, hydra's Override) for one override; a plain value the grammar
    cannot read is quoted (module docstring). Raises ConfigError."""
    from hydra.errors import HydraException

    def parse(t):
        return parser.parse_overrides([t])[0]

    try:
        override = parse(text)
    except HydraException as first:
        key, sep, value = text.partition("=")
        quoted = None
        if sep and value and value[0] not in "[{'\"":
            try:
                quoted = f"{key}={_quote(value)}"
                override = parse(quoted)
            except HydraException:
                quoted = None
        if quoted is None:
            reason = str(first).strip().splitlines()[0] if str(first).strip() else "a syntax error"
            raise ConfigError(f"override '{text}' cannot be read ({reason}). {_OVERRIDE_FIX}")
        text = quoted
    if override.is_sweep_override():
        raise ConfigError(
            f"override '{text}': a comma outside brackets makes a hydra sweep, which configs do "
            f"not take. For text with a comma quote it, for a list write key=[a,b]. {_OVERRIDE_FIX}"
        )
    if override.is_delete():
        raise ConfigError(f"override '{text}': deleting a setting (~key) is not supported")
    return text, override


def normalize_overrides(overrides):
    """The overrides as :meth:`LazyConfig.apply_overrides` should be given them: each as typed,
    or, for a plain value hydra's grammar cannot read (module docstring), quoted as text.
    Raises :class:`ConfigError` for what cannot be read either way, with the fix."""
    try:
        from hydra.core.override_parser.overrides_parser import OverridesParser
    except ImportError:  # detectron2 then splits at '=' and reads the value as a literal
        return list(overrides)
    parser = OverridesParser.create()
    return [_read_override(parser, text)[0] for text in overrides]


def _parse(overrides):
    """[(text, key, value, is_add)] with the parser detectron2's apply_overrides uses; ``text``
    as :func:`normalize_overrides` makes it."""
    try:
        from hydra.core.override_parser.overrides_parser import OverridesParser
    except ImportError:  # detectron2 then splits at '=' and reads the value as a literal
        return [(o, o.split("=", 1)[0].lstrip("+"), _ABSENT, o.startswith("+")) for o in overrides]
    parser = OverridesParser.create()
    parsed = [_read_override(parser, text) for text in overrides]
    return [(t, o.key_or_group, o.value(), o.is_add()) for t, o in parsed]


def _target_params(target):
    """Parameter names a LazyCall target accepts, or None when it takes ``**kwargs`` or its
    signature cannot be read (then any key is accepted)."""
    if isinstance(target, str):
        from detectron2.utils.registry import locate

        target = locate(target)
    try:
        params = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind == p.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params}


def _keys(tree, prefix=""):
    """Every dotted key of a plain container tree, plus what its LazyCall targets accept."""
    if isinstance(tree, dict):
        children = [k for k in tree if k != "_target_"]
        if "_target_" in tree:
            children += sorted((_target_params(tree["_target_"]) or set()) - set(children))
        for k in children:
            yield prefix + str(k)
            yield from _keys(tree.get(k), prefix + str(k) + ".")


def _check_key(tree, key, text):
    """Raise ConfigError when ``key`` is neither in ``tree`` nor a key that may be added.
    Returns the current value, or _ABSENT for an allowed new key."""
    node, parent = tree, None
    for part in key.split("."):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node, parent = node[int(part)], node
            continue
        if isinstance(node, dict) and part in node:
            node, parent = node[part], node
            continue
        if isinstance(node, dict) and "_target_" in node:
            params = _target_params(node["_target_"])
            if params is not None and part in params:
                return _ABSENT
            # A target taking **kwargs accepts any name, but one this close to a name the node
            # has is a typo (total_bach_size).
            if params is None and not difflib.get_close_matches(part, list(node), cutoff=0.8):
                return _ABSENT
        elif isinstance(node, dict) and isinstance(parent, dict) and "_target_" in parent:
            return _ABSENT  # an entry of a {name: value} argument, e.g. criterion.losses
        close = difflib.get_close_matches(key, list(_keys(tree)), n=1, cutoff=0.6)
        hint = f"; did you mean '{close[0]}'?" if close else "."
        raise ConfigError(
            f"override '{text}': the config has no setting '{key}'{hint} (An override changes "
            f"an existing setting; write '+{text}' to add a new one on purpose.)"
        )
    return node


def apply_overrides(cfg, overrides: List[str]):
    """:meth:`LazyConfig.apply_overrides` (same syntax, in place, returns ``cfg``) with the
    checks of this module: unknown keys, wrong types, then :func:`check_config` on the result.

    Raises:
        ConfigError: naming the override or setting, what was expected and, for an unknown
            key, the closest existing one.
    """
    tree = OmegaConf.to_container(cfg, resolve=False)
    parsed = _parse(list(overrides))
    for text, key, value, is_add in parsed:
        if is_add:
            continue
        old = _check_key(tree, key, text)
        if old is _ABSENT or value is _ABSENT or old is None:
            continue
        if isinstance(old, bool) and not isinstance(value, bool):
            raise ConfigError(f"override '{text}': {key} is True or False, not {value!r}")
        if _is_number(old) and not _is_number(value):
            raise ConfigError(f"override '{text}': {key} is a number (it was {old}), not {value!r}")
    LazyConfig.apply_overrides(cfg, [text for text, _, _, _ in parsed])
    check_config(cfg)
    return cfg
