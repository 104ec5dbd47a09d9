"""Checking metadata read from files (embeddings/attention NPZ ``meta``, ONNX ``metadata_props``).

Metadata come from files a user did not necessarily make (a Galaxy history, a
download): every value is checked for its type before it is used, and class
names must be the known classes of the RNA type. A problem is one
:class:`~rnaloc_tools.errors.InputError` naming the file.
"""

import json
import numbers

from .. import CLASSES
from ..errors import InputError


def parse_json_object(text, source, what="metadata"):
    """A JSON object (dict) from ``text``; anything else (a list, a number, bad JSON) is an error."""
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, TypeError, ValueError) as exc:
        raise InputError(source, f"corrupt {what}: not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise InputError(source, f"corrupt {what}: a JSON object was expected, not {type(value).__name__}")
    return value


def positive_int(value, source, key, optional=True):
    """``value`` as a positive int (None allowed when ``optional``); bools and strings are errors."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 1:
        raise InputError(source, f"corrupt metadata: {key} must be a positive whole number, not {value!r}")
    return int(value)


def optional_str(value, source, key):
    if value is not None and not isinstance(value, str):
        raise InputError(source, f"corrupt metadata: {key} must be text, not {value!r}")
    return value


def check_rna_type(value, source):
    if value not in CLASSES:
        raise InputError(source, f"corrupt metadata: unknown rna_type {value!r} (known: {', '.join(CLASSES)})")
    return value


def check_classes(classes, rna_type, source):
    """The class names of a model or attention file: exactly the classes of its RNA type, in any order.

    Class names end up in tables and file names (motif logos), so a name is never
    taken from a file unchecked: a path, a tab or a newline cannot get through.
    """
    if not isinstance(classes, (list, tuple)) or not all(isinstance(c, str) for c in classes):
        raise InputError(source, f"corrupt metadata: classes must be a list of names, not {classes!r}"[:300])
    known = CLASSES.get(rna_type)
    if known is None:
        raise InputError(source, f"corrupt metadata: unknown rna_type {rna_type!r} (known: {', '.join(CLASSES)})")
    if len(classes) != len(known) or set(classes) != set(known):
        shown = ", ".join(repr(c) for c in classes[:4])
        raise InputError(source, f"corrupt metadata: the classes of {rna_type} are {', '.join(known)}, not {shown}"[:400])
    return tuple(classes)
