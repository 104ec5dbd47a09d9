"""The Galaxy forms' promises that need no Galaxy (the real-Galaxy and browser tests are in
.ci/galaxy-test.sh and .ci/galaxy-browser.py):

- the help's model descriptions and example tables are made from the model cards and real runs
  (galaxy/make_help.py) and are up to date;
- every @TOKEN@ a wrapper uses is defined;
- no form picks an RNA type for the user;
- the '#' provenance line can show the command as the user chose it (RNALOC_COMMAND_LINE),
  on one line;
- the citation carries its BibTeX (an offline Galaxy cannot resolve a bare DOI).
"""

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from rnaloc_tools import __version__

REPO = Path(__file__).resolve().parents[1]
GALAXY = REPO / "galaxy"
WRAPPERS = sorted(GALAXY.glob("rnaloc_*.xml"))


def test_help_macros_are_made_from_the_cards_and_real_runs():
    sys.path.insert(0, str(GALAXY))
    try:
        import make_help
    finally:
        sys.path.remove(str(GALAXY))
    made = make_help.render()
    assert (GALAXY / "help_macros.xml").read_text() == made, (
        "galaxy/help_macros.xml is out of date (bundled models, their cards or an output changed): "
        "run python galaxy/make_help.py"
    )
    # what the help says is what a run gives: the example's rows are in it
    first_id = next(line[1:].split()[0] for line in (REPO / "test-data" / "example-miRNA.fa").open() if line.startswith(">"))
    assert first_id in made and "probability_extracellular" in made


def _tokens_defined():
    names = set()
    for path in (GALAXY / "macros.xml", GALAXY / "help_macros.xml"):
        names |= {t.get("name") for t in ET.parse(path).getroot().iter("token")}
        for xml in ET.parse(path).getroot().iter("xml"):
            names |= {"@" + k[len("token_"):].upper() + "@" for k in xml.attrib if k.startswith("token_")}
    return names


@pytest.mark.parametrize("wrapper", WRAPPERS, ids=lambda p: p.stem)
def test_every_token_a_wrapper_uses_is_defined(wrapper):
    root = ET.parse(wrapper).getroot()
    imports = {el.text for el in root.iter("import")}
    used = set(re.findall(r"@[A-Z_]+@", wrapper.read_text()))
    defined = _tokens_defined()
    assert used <= defined, f"{wrapper.name}: undefined tokens {used - defined}"
    help_tokens = {t.get("name") for t in ET.parse(GALAXY / "help_macros.xml").getroot().iter("token")}
    if used & help_tokens:
        assert "help_macros.xml" in imports, f"{wrapper.name} uses help tokens without importing help_macros.xml"


def _rna_type_params():
    for path in [GALAXY / "macros.xml", *WRAPPERS]:
        for param in ET.parse(path).getroot().iter("param"):
            if param.get("name") == "rna_type" and param.get("type") == "select":
                yield path.name, param


def test_no_form_chooses_the_rna_type_for_the_user():
    params = list(_rna_type_params())
    assert params, "no rna_type select found"
    for where, param in params:
        selected = [o.get("value") for o in param.iter("option") if o.get("selected") == "true"]
        assert selected == ["choose"], f"{where}: rna_type pre-selects {selected}"
        validators = [v for v in param.iter("validator") if v.get("type") == "expression"]
        assert validators and "!= 'choose'" in validators[0].text, f"{where}: rna_type 'choose' is not refused"


def test_citation_has_bibtex_beside_the_doi():
    citations = list(ET.parse(GALAXY / "macros.xml").getroot().iter("citation"))
    types = {c.get("type") for c in citations}
    assert types == {"doi", "bibtex"}
    bibtex = next(c.text for c in citations if c.get("type") == "bibtex")
    assert "10.1093/bioinformatics/btaf127" in bibtex and "Zeng, Min" in bibtex and "year = {2025}" in bibtex


def test_provenance_line_shows_the_command_as_chosen(tmp_path):
    out = tmp_path / "p.tsv"
    env = dict(os.environ, RNALOC_COMMAND_LINE="rnaloc predict my\nfile.fa   --rna-type miRNA", RNALOC_NO_PROGRESS="1")
    r = subprocess.run(
        [sys.executable, "-m", "rnaloc_tools", "predict", str(REPO / "test-data" / "galaxy-mirna3.fa"),
         "--rna-type", "miRNA", "-o", str(out)],
        capture_output=True, text=True, env=env, cwd=REPO,
    )
    assert r.returncode == 0, r.stderr
    comments = [line for line in out.read_text().splitlines() if line.startswith("#")]
    assert f"#rnaloc predict {__version__}: rnaloc predict my file.fa --rna-type miRNA" in comments
    assert not any(str(tmp_path) in line or "galaxy-mirna3.fa" in line for line in comments)
