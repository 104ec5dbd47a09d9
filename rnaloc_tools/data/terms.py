"""The default mapping of database localization terms to the two classes of each RNA type.

Every term a database export uses must be *known*: mapped to one of the RNA
type's classes, or to :data:`EXCLUDE` (a real compartment that is neither
class: the entry is set aside and counted). A term that is not listed is
*unknown*: ``curate`` stops and lists it (``--ignore-unknown`` sets such
entries aside instead, still listed), so nothing is dropped silently.

Rules (after the paper, section 2.1, and DESIGN.md "Data curation"):

lncRNA and circRNA (nucleus vs cytoplasm)
    nucleus: "Nucleus" and compartments inside the nucleus (nucleoplasm,
    chromatin, nucleolus, speckles, paraspeckles, nuclear matrix ...).
    cytoplasm: "Cytoplasm".
    Excluded: "Cytosol" (the paper: cytosol and cytoplasm were annotated
    ambiguously in early literature, so only cytoplasm counts); fractions
    such as "Insoluble cytoplasm" (cytoskeleton-bound, reported for
    nuclear RNAs such as XIST too); organelles,
    membranes and neuronal compartments (neither class by name); the nuclear
    envelope and perinuclear region (on the boundary); extracellular
    vesicles and exosomes (secreted, not a nucleus/cytoplasm call); tissue
    layers.
miRNA (extracellular vs intracellular, as iLoc-miRNA and the paper)
    extracellular: exosome, microvesicle, extracellular vesicle, plasma
    membrane vesicle. intracellular: chromatin, cytoplasm, plasma membrane,
    endoplasmic reticulum membrane, nucleolus, mitochondrion, nucleus,
    processing body. Excluded: cytosol (as above).

Terms are compared case-insensitively with runs of white space collapsed.
``rnaloc curate --show-mapping`` prints this table as a TSV that can be
edited and given back with ``--mapping``.
"""

import re

EXCLUDE = "exclude"

_NUCLEAR = (
    "Nucleus",
    "Nucleoplasm",
    "Chromatin",
    "Nucleolus",
    "Nuclear speckle",
    "Speckle periphery",
    "Paraspeckles",
    "Nuclear paraspeckle",
    "Nuclear matrix",
    "Perichromatin",
    "Nucleoplasmic foci",
    "Nuclear RNA cloud",
    "X chromosome",
    "Nucleus(exclusion from nucleoli)",
)
_CYTOPLASMIC = (
    "Cytoplasm",
)
_NEITHER = (
    "Cytosol",
    "Insoluble cytoplasm",
    "Exosome",
    "Extracellular exosome",
    "Extracellular vesicle",
    "Microvesicle",
    "Membrane",
    "Membrane-basal",
    "Nuclear membrane",
    "Nuclear periphery",
    "Periphery of the nucleus",
    "Perinuclear",
    "Around the nuclear membrane",
    "Around the nucleus",
    "Leading edge of the perinuclear",
    "Leading edge of the lamellipodium",
    "Cell body",
    "Soma",
    "Axon",
    "Dendrite",
    "Neurite",
    "Synaptoneurosome",
    "Mitochondrion",
    "Mitochondrial cloud",
    "Ribosome",
    "Endoplasmic reticulum",
    "Microsome",
    "Stress granule",
    "Vegetal cortex",
    "Germ plasm",
    "Inner nuclear layer",
    "Ganglion cell layer (GCL)",
)

_NUCLEUS_CYTOPLASM = (
    [(t, "nucleus") for t in _NUCLEAR]
    + [(t, "cytoplasm") for t in _CYTOPLASMIC]
    + [(t, EXCLUDE) for t in _NEITHER]
)

_MIRNA = (
    [
        (t, "extracellular")
        for t in (
            "Exosome",
            "Extracellular exosome",
            "Microvesicle",
            "Extracellular vesicle",
            "Plasma membrane vesicle",
        )
    ]
    + [
        (t, "intracellular")
        for t in (
            "Chromatin",
            "Cytoplasm",
            "Plasma membrane",
            "Endoplasmic reticulum membrane",
            "Nucleolus",
            "Mitochondrion",
            "Nucleus",
            "Processing body",
            "P-body",
        )
    ]
    + [("Cytosol", EXCLUDE)]
)

#: rna_type -> list of (term, class or EXCLUDE), in a readable order.
DEFAULT_MAPPING = {
    "lncRNA": _NUCLEUS_CYTOPLASM,
    "miRNA": _MIRNA,
    "circRNA": _NUCLEUS_CYTOPLASM,
}

_SPACE = re.compile(r"\s+")


def term_key(term):
    """The form in which terms are compared: case-folded, white space collapsed."""
    return _SPACE.sub(" ", str(term)).strip().casefold()
