"""The README is a short guide whose links resolve and whose headline numbers are the result
file's, not typed by hand."""

import json
import re

from multimix.evaluation.tables import mean_sd_text

from helpers import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()


def test_the_readme_is_a_short_guide():
    assert len(README.splitlines()) <= 250


def test_every_relative_link_of_the_readme_resolves():
    targets = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README)
    local = [t for t in targets if not t.startswith(("http://", "https://", "mailto:"))]
    assert local and all((REPO_ROOT / t).exists() for t in local), [t for t in local if not (REPO_ROOT / t).exists()]


def test_the_headline_table_is_the_result_file():
    marker = re.search(r"<!-- headline: (\S+) variant=(\S+) columns=(\S+) -->\n(.*?)<!-- /headline -->", README, re.S)
    assert marker, "the headline table names the result file it comes from"
    path, variant, columns, table = marker.groups()
    records = [r for r in json.loads((REPO_ROOT / path).read_text())["records"] if r["variant"] == variant]
    assert len(records) >= 3  # several seeds, never one
    cells = [c.strip() for c in table.strip().splitlines()[-1].strip("|").split("|")][1:]
    expected = [mean_sd_text([r[key] for r in records if r.get(key) is not None]) for key in columns.split(",")]
    assert cells == expected
