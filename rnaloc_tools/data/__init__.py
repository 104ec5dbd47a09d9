"""Building data sets: curate database exports, remove redundancy (CD-HIT-EST), split.

:func:`curate.curate`, :func:`dedup.dedup` and :func:`split.split` are the
library functions behind ``rnaloc curate``, ``rnaloc dedup`` and ``rnaloc split``.
"""
