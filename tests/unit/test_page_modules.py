"""The page's ES modules (site/app.js and site/js/): index.html preloads every module the page loads, so the
browser fetches them at once rather than one import level after another, and each is type-checked by
editors (`// @ts-check`)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "site"
IMPORT = re.compile(r"""(?:\bfrom\s*|\bimport\s*\(\s*|^import\s*)["'](\.{1,2}/[^"']+)["']""", re.MULTILINE)
COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.DOTALL)  # JSDoc's import() types load nothing


def loaded_modules() -> set[str]:
    """Every module app.js loads, statically or by import(), as paths relative to site/."""
    seen: set[str] = set()
    todo = [SITE / "app.js"]
    while todo:
        path = todo.pop()
        for specifier in IMPORT.findall(COMMENT.sub("", path.read_text())):
            target = (path.parent / specifier).resolve()
            relative = target.relative_to(SITE).as_posix()
            if relative not in seen:
                seen.add(relative)
                if target.exists():  # vendor/constants.js exists once tools/vendor.py has run
                    todo.append(target)
    return seen


class Preloads(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "link" and attributes.get("rel") == "modulepreload":
            self.hrefs.add(attributes["href"].removeprefix("./"))


def test_index_html_preloads_every_module_the_page_loads():
    parser = Preloads()
    parser.feed((SITE / "index.html").read_text())
    modules = loaded_modules()
    assert {"js/main.js", "js/keys.js", "vendor/constants.js"} <= modules
    assert parser.hrefs == modules


def test_every_page_module_is_type_checked():
    modules = [SITE / "app.js", *sorted((SITE / "js").glob("*.js"))]
    unchecked = [path.name for path in modules if not path.read_text().startswith("// @ts-check\n")]
    assert len(modules) > 5 and unchecked == []
