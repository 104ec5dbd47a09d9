#!/usr/bin/env python3
"""The Galaxy wrappers as a biologist meets them: a real browser against the Galaxy that
.ci/galaxy-test.sh started (its web client installed).

In headless Chromium (Debian's chromium + chromium-driver, Selenium from PyPI):
  1. register a new user through the registration form;
  2. upload test-data/example-miRNA.fa through the upload dialog;
  3. open rnaloc predict, check that it cannot run before the RNA type is chosen, choose
     miRNA, run it, open the result and check the table in the page against a local
     `rnaloc predict` of the same file (every id, its predicted class);
  4. open rnaloc motifs, which opens in "run a model on these sequences" mode with the
     FASTA selected, choose miRNA, run it, open the motifs table and check it against a
     local `rnaloc motifs` run.

Screenshots of each form and result go to --shots; on failure the script also saves the
page as it was and says where. --forms-only opens the two forms and saves their
screenshots without registering results checks (for before/after pictures).

Run with the planemo venv's python (selenium).
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
import traceback

from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

CHROME_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1500,1200",
]
PASSWORD = "a-long-test-password"


class Browser:
    def __init__(self, url, shots, chromedriver, chromium):
        self.url = url.rstrip("/")
        self.shots = shots
        os.makedirs(shots, exist_ok=True)
        self.profile = tempfile.mkdtemp(prefix="rnaloc-chromium-")
        options = webdriver.ChromeOptions()
        for flag in CHROME_FLAGS + [f"--user-data-dir={self.profile}"]:
            options.add_argument(flag)
        if chromium:
            options.binary_location = chromium
        self.driver = webdriver.Chrome(service=Service(chromedriver), options=options)
        self.driver.set_page_load_timeout(120)

    def get(self, path=""):
        self.driver.get(f"{self.url}/{path.lstrip('/')}")

    def wait(self, css, timeout=60, visible=True, what=None):
        cond = EC.visibility_of_element_located if visible else EC.presence_of_element_located
        try:
            return WebDriverWait(self.driver, timeout).until(cond((By.CSS_SELECTOR, css)))
        except TimeoutException:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or css}") from None

    def click(self, css, timeout=60, what=None):
        el = self.wait(css, timeout, what=what)
        WebDriverWait(self.driver, timeout).until(EC.element_to_be_clickable((By.CSS_SELECTOR, css)))
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", el)
        el.click()
        return el

    def shot(self, name):
        path = os.path.join(self.shots, f"{name}.png")
        # the whole form, not only the window: grow the window to the page's height
        height = self.driver.execute_script(
            "return Math.max(document.body.scrollHeight,"
            " ...Array.from(document.querySelectorAll('#center *')).map(e => e.scrollHeight));"
        )
        self.driver.set_window_size(1500, min(max(int(height) + 100, 1200), 6000))
        time.sleep(0.5)
        self.driver.save_screenshot(path)
        self.driver.set_window_size(1500, 1200)
        print(f"galaxy-browser: screenshot {path}", flush=True)
        return path

    def quit(self):
        try:
            self.driver.quit()
        finally:
            subprocess.run(["rm", "-rf", self.profile], check=False)


# --- steps -----------------------------------------------------------------------------

def open_galaxy(b):
    b.get()
    try:
        b.wait("#masthead", timeout=120)
    except AssertionError:
        raise AssertionError(
            "Galaxy's page has no masthead: the web client is not installed "
            "(pip install galaxy-web-client in Galaxy's venv)"
        ) from None


def register(b):
    b.get("login/start")
    b.click("#register-toggle", what="the 'Register here' link of the login page")
    form = b.wait("form#registration", what="the registration form")
    user = f"biologist-{int(time.time())}"
    for name, value in (("email", f"{user}@example.org"), ("password", PASSWORD), ("confirm", PASSWORD), ("username", user)):
        field = form.find_element(By.CSS_SELECTOR, f"input[name='{name}']")
        field.clear()
        field.send_keys(value)
    b.click("button[name='create']")
    b.wait(".loggedin-only", timeout=60, what="the masthead of a logged-in user")


def upload(b, path):
    b.get()
    b.wait("#masthead")
    b.click("#activity-upload", what="the Upload button")
    b.click("div#regular button#btn-local", what="'Choose local file' in the upload dialog")
    b.wait("div#regular input[type='file']", visible=False).send_keys(os.path.abspath(path))
    b.wait("div#regular .upload-row", what="the upload row of the chosen file")
    b.shot("upload-dialog")
    b.click("div#regular button#btn-start", what="the upload dialog's Start button")
    WebDriverWait(b.driver, 120).until_not(
        lambda d: d.find_elements(By.CSS_SELECTOR, "div#regular .upload-row.upload-init, div#regular .upload-row.upload-queued")
    )
    b.click("div#regular button#btn-close", what="the upload dialog's Close button")


def wait_hid_ok(b, hid, timeout=300):
    css = f'#current-history-panel [data-hid="{hid}"]'
    deadline = time.time() + timeout
    while time.time() < deadline:
        items = b.driver.find_elements(By.CSS_SELECTOR, css)
        states = {i.get_attribute("data-state") for i in items}
        if "ok" in states:
            return items[0]
        if states & {"error", "failed_metadata"}:
            items[0].click()
            time.sleep(2)
            b.shot(f"hid{hid}-error")
            raise AssertionError(f"history item {hid} ended in state {states}: {items[0].text!r}")
        time.sleep(2)
    raise AssertionError(f"history item {hid} not ok within {timeout} s (states {states or 'absent'})")


def open_tool(b, tool_id):
    b.get(f"?tool_id={tool_id}&version=latest")
    b.wait("#execute", timeout=90, what=f"the {tool_id} form's Run button")
    time.sleep(2)  # the form fills its defaults after the button appears


def form_element(b, name):
    return b.wait(f'div.ui-form-element[id="form-element-{name}"]', what=f"the form field {name}")


def select(b, name, text):
    """Choose the option whose label starts with `text` in the select field `name`."""
    el = form_element(b, name)
    el.find_element(By.CSS_SELECTOR, ".multiselect__select").click()
    box = el.find_element(By.CSS_SELECTOR, "input.multiselect__input")
    box.send_keys(text)
    time.sleep(0.5)
    box.send_keys(Keys.ENTER)
    time.sleep(1)
    shown = el.find_element(By.CSS_SELECTOR, ".multiselect__single, .multiselect__tags").text
    if text.lower() not in shown.lower():
        raise AssertionError(f"field {name}: chose {text!r} but it shows {shown!r}")


def run_button_enabled(b):
    btn = b.wait("#execute")
    return btn.get_attribute("disabled") is None and "disabled" not in (btn.get_attribute("class") or "")


def run_tool(b):
    b.click("#execute", what="the Run button")
    b.wait(".alert-success, [data-description='job submission success'], .job-information, .tool-execution-success",
           timeout=60, what="Galaxy's 'job submitted' message")


def table_in_page(b, hid):
    """Open history item `hid` in the centre panel (the eye icon) and return its table's rows."""
    item = wait_hid_ok(b, hid)
    b.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", item)
    item.find_element(By.CSS_SELECTOR, ".display-btn").click()
    deadline = time.time() + 60
    rows = []
    while time.time() < deadline:
        rows = []
        for tr in b.driver.find_elements(By.CSS_SELECTOR, "#center table tr"):
            cells = [c.text.strip() for c in tr.find_elements(By.CSS_SELECTOR, "th, td")]
            if any(cells) and not cells[0].startswith("#"):  # the '#' lines are shown as rows too
                rows.append(cells)
        if len(rows) > 1:
            break
        time.sleep(1)
    return rows


def local_run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, RNALOC_NO_PROGRESS="1"))
    if r.returncode:
        raise AssertionError(f"local run {cmd} failed: {r.stderr}")
    return [line.split("\t") for line in r.stdout.splitlines() if line and not line.startswith("#")]


def run_form(b, tool, rna_type_field, hid, chosen):
    """Open rnaloc TOOL's form, check that it cannot run before an RNA type is chosen (it must not
    guess one), choose miRNA, run it and return the table of the resulting history item ``hid``;
    screenshots of each step."""
    open_tool(b, f"rnaloc_{tool}")
    b.shot(f"{tool}-form")
    if run_button_enabled(b):
        raise AssertionError(f"rnaloc {tool} can run before an RNA type is chosen (it must not guess one)")
    select(b, rna_type_field, "miRNA")
    if not run_button_enabled(b):
        b.shot(f"{tool}-form-not-runnable")
        raise AssertionError(f"rnaloc {tool} cannot run {chosen}")
    b.shot(f"{tool}-form-chosen")
    run_tool(b)
    rows = table_in_page(b, hid)
    b.shot(f"{tool}-result")
    return rows


def check_predict(b, args, fasta):
    rows = run_form(b, "predict", "model|type|rna_type", 2, "after choosing the FASTA and the miRNA model")
    expected = local_run([args.rnaloc, "predict", fasta, "--rna-type", "miRNA"])
    header = expected[0]
    by_id = {r[0]: r for r in rows}
    missing = [r[0] for r in expected[1:] if r[0] not in by_id]
    if missing:
        raise AssertionError(f"predictions table in the page lacks {missing}; it shows {rows[:3]}")
    page_header = by_id.get("id", [])
    absent = [name for name in header if name not in page_header]
    if absent:
        raise AssertionError(f"the page's table lacks the columns {absent} (it shows {page_header})")
    wrong = [
        (r[0], name, by_id[r[0]][page_header.index(name)], r[header.index(name)])
        for r in expected[1:]
        for name in ("prediction", "confidence", "in_domain")
        if name in header and by_id[r[0]][page_header.index(name)] != r[header.index(name)]
    ]
    if wrong:
        raise AssertionError(f"predictions in the page differ from a local run (id, column, page, local): {wrong[:3]}")
    print(f"galaxy-browser: predict table in the page: {len(expected) - 1} rows, each as a local run", flush=True)


def check_motifs(b, args, fasta):
    rows = run_form(b, "motifs", "mode|model|type|rna_type", 3, "in its default mode with the FASTA and the miRNA model")
    expected = local_run([args.rnaloc, "motifs", fasta, "--rna-type", "miRNA", "--motifs", "-"])
    if not rows or rows[0][:3] != expected[0][:3]:
        raise AssertionError(f"motifs table in the page: header {rows[:1]}, expected {expected[0][:3]}")
    if len(rows) != len(expected):
        raise AssertionError(f"motifs table in the page has {len(rows) - 1} motifs, a local run {len(expected) - 1}")
    print(f"galaxy-browser: motifs table in the page: {len(rows) - 1} motifs, as a local run", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--repo", required=True)
    ap.add_argument("--rnaloc", required=True, help="the rnaloc the Galaxy jobs use")
    ap.add_argument("--shots", required=True, help="folder for screenshots")
    ap.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    ap.add_argument("--chromium", default=None, help="browser binary (default: chromedriver's own choice)")
    ap.add_argument("--forms-only", action="store_true", help="screenshots of the two forms, no runs")
    args = ap.parse_args()
    fasta = os.path.join(args.repo, "test-data", "example-miRNA.fa")
    start = time.time()
    b = Browser(args.url, args.shots, args.chromedriver, args.chromium)
    step = "start"
    try:
        step = "open Galaxy"
        open_galaxy(b)
        step = "register"
        register(b)
        step = "upload"
        upload(b, fasta)
        wait_hid_ok(b, 1)
        if args.forms_only:
            for tool in ("rnaloc_predict", "rnaloc_motifs"):
                open_tool(b, tool)
                b.shot(tool.replace("rnaloc_", "") + "-form")
            return 0
        step = "predict"
        check_predict(b, args, fasta)
        step = "motifs"
        check_motifs(b, args, fasta)
    except (AssertionError, WebDriverException) as exc:
        try:
            b.shot(f"FAILED-{step}")
            with open(os.path.join(args.shots, f"FAILED-{step}.html"), "w") as fh:
                fh.write(b.driver.page_source)
        except WebDriverException:
            pass
        traceback.print_exc()
        print(f"galaxy-browser: FAILED at '{step}': {exc}\n  screenshots in {args.shots}", file=sys.stderr)
        return 1
    finally:
        b.quit()
    print(f"galaxy-browser: passed in {time.time() - start:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
