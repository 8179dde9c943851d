"""The static site (helpers/site.py, `make site`): every page, every figure embedded, every link works.

Notebooks 01 and 03 are executed in quick mode once per module (~15 s each on 2 cores, once the
quick posterior is cached by notebook 02's run in tests/test_notebooks.py), a link cell is added to
01's executed copy, and the site is built from them through the command line.
"""

from __future__ import annotations

import base64
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest
from nbformat.v4 import new_markdown_cell

from helpers import course, site

ROOT = Path(__file__).resolve().parent.parent
NB01, NB03 = "01_the_marketing_problem.ipynb", "03_the_simulator_environment.ipynb"
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif")
#: Added to 01's executed copy: a link to another notebook (with an anchor), to a repository
#: markdown file, to another file, and a markdown image.
LINK_CELL = (
    "Next: [the simulator](03_the_simulator_environment.ipynb#2.-One-month-played-by-hand); timings in "
    "[TEACHING.md](../TEACHING.md#timings); the data [as a CSV](../data/marketing_daily.csv).\n\n"
    "![the clip explorer](../docs/img/clip_explorer.png)"
)


class Page(HTMLParser):
    def __init__(self, path: Path):
        super().__init__()
        self.path, self.imgs, self.hrefs = path, [], []
        self.feed(path.read_text(encoding="utf-8"))

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.imgs.append(attrs.get("src") or "")
        elif tag == "a" and attrs.get("href"):
            self.hrefs.append(attrs["href"])

    def local_links(self) -> list[str]:
        return [h for h in self.hrefs if not urlsplit(h).scheme and not h.startswith(("#", "//"))]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("site")
    executed = tmp / "course"
    for name in (NB01, NB03):
        course.execute_notebook(course.NOTEBOOKS_DIR / name, quick=True, output_path=executed / name)
    nb = nbformat.read(executed / NB01, as_version=4)
    nb.cells.append(new_markdown_cell(LINK_CELL))
    nbformat.write(nb, executed / NB01)
    (executed / "04_ppo_from_scratch.failed.ipynb").write_text("{}")  # a failed run is never published
    out = tmp / "site"
    done = subprocess.run([sys.executable, "-m", "helpers.site", "--from", str(executed), "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "wrote" in done.stdout and "index.html" in done.stdout
    return executed, out


def image_outputs(path: Path) -> int:
    nb = nbformat.read(path, as_version=4)
    return sum(1 for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
               if o.get("output_type") in ("display_data", "execute_result") and any(t in o.get("data", {}) for t in IMAGE_TYPES))


def test_every_notebook_has_a_page_and_the_index_lists_them_in_order(built):
    executed, out = built
    names = sorted(p.name for p in out.iterdir())
    assert names == ["01_the_marketing_problem.html", "03_the_simulator_environment.html", "TEACHING.html", "index.html", "repo", "workshop-README.html"]
    index = Page(out / "index.html")
    assert index.local_links() == ["01_the_marketing_problem.html", "03_the_simulator_environment.html"]
    text = (out / "index.html").read_text()
    for name in (NB01, NB03):
        title = site.notebook_title(nbformat.read(executed / name, as_version=4), "")
        assert title.startswith(name[:2] + " · ") and title in text.replace("&#183;", "·")


def test_every_figure_is_embedded_and_none_is_lost(built):
    executed, out = built
    want = image_outputs(executed / NB01) + image_outputs(executed / NB03)
    assert want >= 5, "the executed notebooks should show figures"
    imgs = [src for page in out.glob("*.html") for src in Page(page).imgs]
    assert len(imgs) == want + 1  # one per image output, plus the markdown image of LINK_CELL
    assert all(src.startswith("data:image/") for src in imgs), [s[:60] for s in imgs if not s.startswith("data:")]
    embedded_md = [src for src in Page(out / "01_the_marketing_problem.html").imgs
                   if base64.b64decode(src.split(",", 1)[1]) == (ROOT / "docs/img/clip_explorer.png").read_bytes()]
    assert len(embedded_md) == 1


def test_every_local_link_resolves_and_notebook_links_point_to_pages(built):
    _, out = built
    for page in out.glob("*.html"):
        for href in Page(page).local_links():
            target = out / unquote(urlsplit(href).path)
            assert target.is_file(), f"{page.name}: link {href!r} leads nowhere in the site"
            assert not href.split("#")[0].endswith((".ipynb", ".md")), f"{page.name}: {href!r} was not rewritten"
    links = Page(out / "01_the_marketing_problem.html").local_links()
    assert "03_the_simulator_environment.html#2.-One-month-played-by-hand" in links
    assert "TEACHING.html#timings" in links
    assert "repo/data/marketing_daily.csv" in links
    assert (out / "repo/data/marketing_daily.csv").read_bytes() == (ROOT / "data/marketing_daily.csv").read_bytes()
    # each notebook page links to the contents and its neighbours, at the top and the bottom
    assert links.count("index.html") == 2 and links.count("03_the_simulator_environment.html") == 2
    assert Page(out / "03_the_simulator_environment.html").local_links().count("01_the_marketing_problem.html") == 2


def test_a_link_to_a_missing_notebook_is_an_error_and_the_old_site_stays(built, tmp_path):
    executed, out = built
    broken = tmp_path / "course"
    broken.mkdir()
    nb = nbformat.read(executed / NB03, as_version=4)
    nb.cells.append(new_markdown_cell("See [the agent](05_training_the_budget_agent.ipynb)."))
    nbformat.write(nb, broken / NB03)
    target = tmp_path / "site"
    target.mkdir()
    (target / "index.html").write_text("old site")
    with pytest.raises(site.SiteError, match=r"03_the_simulator_environment\.ipynb.*'05_training_the_budget_agent\.ipynb'"):
        site.build_site(broken, target)
    assert [p.name for p in target.iterdir()] == ["index.html"] and (target / "index.html").read_text() == "old site"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["course", "site"]  # the half-built site was removed


def test_no_notebooks_and_a_folder_that_is_not_a_site_are_refused(tmp_path, built):
    executed, _ = built
    with pytest.raises(site.SiteError, match="no executed notebooks.*make course"):
        site.build_site(tmp_path, tmp_path / "out")
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("do not delete")
    with pytest.raises(site.SiteError, match="not a site"):
        site.build_site(executed, precious)
    assert (precious / "thesis.tex").read_text() == "do not delete"
