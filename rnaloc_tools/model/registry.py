"""Architecture registry: name -> (module class, hyperparameter dataclass)."""

import dataclasses

from ..errors import RnalocError

#: name -> (nn.Module subclass taking (hparams), hparams dataclass)
ARCHITECTURES = {}


def register(name, hparams_cls):
    """Class decorator: ``@register("rnaloc", RnalocHParams)``."""

    def deco(cls):
        ARCHITECTURES[name] = (cls, hparams_cls)
        return cls

    return deco


def _load_all():
    # Importing the modules registers their architectures.
    from . import heads  # noqa: F401  (rnaloc, transformer)
    from . import kmer  # noqa: F401  (kmer: the bundled default models)


def build_model(arch, **hparams):
    """Build architecture ``arch``; returns (module, hparams dataclass instance)."""
    _load_all()
    if arch not in ARCHITECTURES:
        raise RnalocError(f"unknown architecture {arch!r} (known: {', '.join(sorted(ARCHITECTURES))})")
    cls, hp_cls = ARCHITECTURES[arch]
    known = {f.name for f in dataclasses.fields(hp_cls)}
    unknown = set(hparams) - known
    if unknown:
        raise RnalocError(f"architecture {arch!r} has no hyperparameter(s) {', '.join(sorted(unknown))}")
    try:
        hp = hp_cls(**hparams)
        return cls(hp), hp
    except (TypeError, ValueError) as exc:  # a value of the wrong type or range, from --hparams
        raise RnalocError(f"architecture {arch!r}: bad hyperparameters {hparams}: {exc}") from None
