"""The course as a static web site, to read when a laptop gives up: ``python -m helpers.site``.

``make site`` first brings ``build/course/`` up to date (every notebook executed in full mode, by
``helpers.course``), then :func:`build_site` renders each executed notebook with nbconvert's HTML
exporter into ``build/site/``: an ``index.html`` that lists them, every figure embedded and every
link rewritten to work inside the site, so the folder can be copied, zipped or served as it is
(TEACHING.md, "The fallback ladder", last rung). Pages load MathJax (formulas) and require.js
from a CDN, as nbconvert's pages do; everything else works offline.
"""

from __future__ import annotations

import argparse
import base64
import html
import mimetypes
import re
import shutil
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from helpers.data import atomic_write_text

ROOT = Path(__file__).resolve().parent.parent
COURSE_DIR = ROOT / "build" / "course"
SITE_DIR = ROOT / "build" / "site"
#: Where the notebooks' own relative links point from (the course's source folder).
SOURCE_DIR = ROOT / "notebooks"
#: Sub-folder of the site for copies of linked repository files that are not pages.
FILES_DIR = "repo"  # not "files/": nbconvert strips that prefix from links (Jupyter server URLs)

# [text](target) and ![alt](target), with an optional "title"; and [label]: target definitions.
_INLINE_LINK = re.compile(r'(!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*)(<[^>]*>|[^)\s]+)((?:\s+"[^"]*")?\s*\))')
_REF_LINK = re.compile(r"^( {0,3}\[[^\]]+\]:\s*)(\S+)", re.M)
_HTML_IMG = re.compile(r'(<img\b[^>]*?\bsrc=")([^"]+)(")', re.I)
_HEADING = re.compile(r"^#\s+(.+?)\s*#*\s*$", re.M)


class SiteError(ValueError):
    """The site cannot be built as asked (no notebooks, a link that leads nowhere)."""


def notebook_title(nb, fallback: str) -> str:
    """The first ``# heading`` of the notebook's first markdown cell with one, else ``fallback``."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            found = _HEADING.search(cell.source)
            if found:
                return found.group(1).strip()
    return fallback


@dataclass
class _Site:
    """What one build knows: the notebook pages, the markdown files rendered so far, the copies."""

    pages: dict[str, str]  # notebook file name -> page name
    docs: dict[Path, str] = field(default_factory=dict)  # markdown source -> page name
    pending: list[Path] = field(default_factory=list)  # markdown files still to render
    copies: dict[Path, str] = field(default_factory=dict)  # repository file -> its path in the site

    def doc_page(self, path: Path) -> str:
        if path not in self.docs:
            rel = path.relative_to(ROOT).with_suffix("")
            name = "-".join(rel.parts) + ".html"
            taken = set(self.pages.values()) | set(self.docs.values()) | {"index.html"}
            stem, k = name[:-5], 2
            while name in taken:
                name, k = f"{stem}-{k}.html", k + 1
            self.docs[path] = name
            self.pending.append(path)
        return self.docs[path]

    def target(self, link: str, base: Path) -> str | None:
        """Where ``link`` (written in a file in ``base``) points in the site; None if nowhere."""
        parts = urlsplit(link)
        if parts.scheme or parts.netloc or not parts.path:  # external, mailto:, data:, or "#anchor"
            return link
        fragment = f"#{parts.fragment}" if parts.fragment else ""
        path = (base / unquote(parts.path)).resolve()
        if path.suffix == ".ipynb":
            page = self.pages.get(path.name)
            return page + fragment if page else None
        if path.suffix == ".md" and path.is_file() and path.is_relative_to(ROOT):
            return self.doc_page(path) + fragment
        if path.is_file() and path.is_relative_to(ROOT):
            rel = path.relative_to(ROOT).as_posix()
            self.copies[path] = f"{FILES_DIR}/{rel}"
            return self.copies[path] + fragment
        return None

    def rewrite(self, source: str, base: Path, where: str, strict: bool) -> str:
        """``source`` (markdown) with every link and image made to point inside the site."""

        def one(match: re.Match) -> str:  # group 2 is the link in each pattern
            raw = match.group(2)
            link = raw[1:-1] if raw.startswith("<") else raw
            image = match.group(0).lower().startswith(("!", "<img"))
            new = self.embed(link, base) if image else self.target(link, base)
            if new is None:
                what = "the image" if image else "the link"
                message = f"{where}: {what} {link!r} leads to nothing in the site (no such notebook or file)"
                if strict:
                    raise SiteError(message)
                warnings.warn(message, stacklevel=4)
                return match.group(0)
            start, end = match.start(2) - match.start(), match.end(2) - match.start()
            return match.group(0)[:start] + new + match.group(0)[end:]

        source = _INLINE_LINK.sub(one, source)
        source = _HTML_IMG.sub(one, source)
        return _REF_LINK.sub(one, source)

    @staticmethod
    def embed(src: str, base: Path) -> str | None:
        """A local image as a ``data:`` URI (nbconvert's own embedding stops at its base folder,
        so ``../docs/img/x.png`` would stay a file link); other URLs unchanged; None if missing."""
        parts = urlsplit(src)
        if parts.scheme or parts.netloc:
            return src
        path = (base / unquote(parts.path)).resolve()
        if not (path.is_file() and path.is_relative_to(ROOT)):
            return None
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _exporter():
    from nbconvert import HTMLExporter

    # embed_images: a second line of defence (images in the notebook's folder written in ways the
    # rewriting above does not see); attachments and outputs are always embedded
    return HTMLExporter(embed_images=True)


def _nav_cell(order: list[tuple[str, str]], k: int):
    """A markdown cell with links to the previous page, the contents and the next page."""
    from nbformat.v4 import new_markdown_cell

    links = []
    if k > 0:
        links.append(f"[← {order[k - 1][1]}]({order[k - 1][0]})")
    links.append("[Contents](index.html)")
    if k + 1 < len(order):
        links.append(f"[{order[k + 1][1]} →]({order[k + 1][0]})")
    return new_markdown_cell(" · ".join(links))


def _render(nb, page: Path, base: Path) -> None:
    body, _ = _exporter().from_notebook_node(nb, resources={"metadata": {"path": str(base)}})
    atomic_write_text(page, body)


def build_site(source: str | Path = COURSE_DIR, out: str | Path = SITE_DIR, *, title: str | None = None,
               link_base: str | Path = SOURCE_DIR) -> list[Path]:
    """Render every ``[0-9]*.ipynb`` in ``source`` (executed notebooks) into a site in ``out``.

    * ``index.html`` lists the notebooks in order, each with its title (the notebook's first ``#``
      heading); every page starts and ends with links to the previous page, the contents and the next;
    * every figure is embedded in its page as a ``data:`` URI (outputs by nbconvert; local markdown
      images, ``![](../docs/img/x.png)`` or ``<img src=...>``, by :meth:`_Site.embed`);
    * links are rewritten to work inside the site: a link to another notebook (``02_....ipynb``,
      ``#anchor`` kept) points to its page (``02_....html``); a link to a markdown file of the
      repository (``../TEACHING.md``) points to a page rendered from it; a link to any other file
      of the repository points to a copy under ``repo/``. A notebook link that does not resolve is
      an error naming the notebook and the link (:class:`SiteError`); in a rendered markdown file
      it is a warning and the link is left as written.

    The site is built in a temporary folder beside ``out`` and swapped in when complete.

    Args:
        source: the executed notebooks (``build/course/`` after ``make course``); ``*.failed.ipynb``
            are never published.
        out: the site's folder: replaced by the new site once that is complete (a folder that
            is not empty and holds no ``index.html`` is never replaced).
        title: the index page's heading (default: the README's first heading).
        link_base: the folder the notebooks' relative links start from (their source folder).

    Returns:
        The pages written, the index first, then the notebooks in order, then rendered markdown files.

    Raises:
        SiteError: no notebooks in ``source``, or a notebook links to a notebook or file that does
            not exist (the message names both).
    """
    import nbformat

    source, out, link_base = Path(source), Path(out), Path(link_base).resolve()
    notebooks = sorted((p for p in source.glob("[0-9]*.ipynb") if not p.name.endswith(".failed.ipynb")), key=lambda p: p.name)
    if not notebooks:
        raise SiteError(f"{source}: no executed notebooks ([0-9]*.ipynb) to publish; run `make course` first")
    read = {p: nbformat.read(p, as_version=4) for p in notebooks}
    site = _Site(pages={p.name: f"{p.stem}.html" for p in notebooks})
    order = [(site.pages[p.name], notebook_title(read[p], p.stem)) for p in notebooks]

    if out.exists() and any(out.iterdir()) and not (out / "index.html").exists():
        raise SiteError(f"{out}: not empty and not a site (no index.html); refusing to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        written = _write_pages(site, notebooks, read, order, tmp, link_base, title)
        tmp.chmod(0o755)  # mkdtemp's folder is private
        if out.exists():  # swap: the old site stays whole until the new one is complete
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [out / p.relative_to(tmp) for p in written]


def _write_pages(site: _Site, notebooks, read, order, out: Path, link_base: Path, title: str | None) -> list[Path]:
    from nbformat.v4 import new_markdown_cell, new_notebook

    heading = title or notebook_title(new_notebook(cells=[new_markdown_cell((ROOT / "README.md").read_text())]), "The course")
    lines = [f"# {heading}", "", "The course's notebooks, executed, with their outputs.", ""]
    lines += [f"{k}. [{html.escape(t)}]({page})" for k, (page, t) in enumerate(order, 1)]
    _render(new_notebook(cells=[new_markdown_cell("\n".join(lines))]), out / "index.html", link_base)
    written = [out / "index.html"]

    for k, path in enumerate(notebooks):
        nb = read[path]
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                cell.source = site.rewrite(cell.source, link_base, path.name, strict=True)
        nb.cells = [_nav_cell(order, k)] + nb.cells + [_nav_cell(order, k)]
        written.append(out / site.pages[path.name])
        _render(nb, written[-1], link_base)

    while site.pending:  # markdown files the pages link to (and those they link to)
        doc = site.pending.pop(0)
        text = site.rewrite(doc.read_text(encoding="utf-8"), doc.parent, str(doc.relative_to(ROOT)), strict=False)
        written.append(out / site.docs[doc])
        _render(new_notebook(cells=[new_markdown_cell("[Contents](index.html)"), new_markdown_cell(text)]), written[-1], doc.parent)

    for path, rel in site.copies.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, out / rel)
    return written


def main(argv: list[str] | None = None) -> int:
    """``python -m helpers.site [--from DIR] [--out DIR] [--title TEXT]``."""
    parser = argparse.ArgumentParser(prog="python -m helpers.site", description=__doc__.split("\n\n")[0])
    parser.add_argument("--from", dest="source", type=Path, default=COURSE_DIR,
                        help=f"the executed notebooks (default: {COURSE_DIR.relative_to(ROOT)})")
    parser.add_argument("--out", type=Path, default=SITE_DIR, help=f"the site's folder, emptied first (default: {SITE_DIR.relative_to(ROOT)})")
    parser.add_argument("--title", default=None, help="the index page's heading (default: the README's first heading)")
    args = parser.parse_args(argv)
    try:
        pages = build_site(args.source, args.out, title=args.title)
    except SiteError as err:
        print(f"site not built: {err}", file=sys.stderr)
        return 1
    print(f"wrote {len(pages)} pages into {args.out}; open {args.out / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
