"""rnaloc-tools: RNA subcellular localization prediction after RNALoc-LM.

Zeng et al., Bioinformatics 41(4) btaf127 (2025), doi:10.1093/bioinformatics/btaf127.

The library never imports Click; the command-line layer lives in
:mod:`rnaloc_tools.cli`.
"""

__version__ = "0.1.0"

#: The RNA types and their two classes, in the order the models use.
CLASSES = {
    "lncRNA": ("nucleus", "cytoplasm"),
    "miRNA": ("extracellular", "intracellular"),
    "circRNA": ("nucleus", "cytoplasm"),
}

RNA_TYPES = tuple(CLASSES)
