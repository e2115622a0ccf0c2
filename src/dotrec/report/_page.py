"""The report as one self-contained HTML page: inline style, PNGs as data URIs."""

from __future__ import annotations

import base64
import html
import os
from dataclasses import dataclass, field
from pathlib import Path

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
       margin: 2em auto; max-width: 1400px; padding: 0 1.5em; color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2em; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 2em; }
nav a { margin-right: 1em; }
figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption, .note { color: #444; font-size: 0.92em; max-width: 75em; }
table { border-collapse: collapse; font-size: 0.9em; margin: 1em 0; }
th, td { padding: 0.2em 0.7em; text-align: right; font-variant-numeric: tabular-nums; }
th { border-bottom: 2px solid #888; }
td:nth-child(-n+2), th:nth-child(-n+2) { text-align: left; }
tr.group td { border-top: 1px solid #ccc; }
ul.summary { padding-left: 1.2em; }
"""


@dataclass
class Section:
    """A part of the report: a heading, text, and optionally a table and a figure.

    Attributes:
        id: the HTML ``id`` (``training``, ``metric-at-k``, ...).
        title: the heading.
        paragraphs: plain text, one paragraph each (escaped when written).
        table: (header, rows) of text cells, or None; a row whose first cell
            is set starts a group.
        image: PNG bytes of the figure, or None.
        caption: the figure's caption.
        notes: plain-text lines shown after the figure.
    """

    id: str
    title: str
    paragraphs: list[str] = field(default_factory=list)
    table: tuple[list[str], list[list[str]]] | None = None
    image: bytes | None = None
    caption: str = ""
    notes: list[str] = field(default_factory=list)

    def to_html(self) -> str:
        parts = [f'<section id="{self.id}">', f"<h2>{_esc(self.title)}</h2>"]
        parts += [f"<p>{_esc(text)}</p>" for text in self.paragraphs]
        if self.table is not None:
            parts.append(_table(*self.table))
        if self.image is not None:
            data = base64.b64encode(self.image).decode("ascii")
            parts.append(
                f'<figure><img src="data:image/png;base64,{data}" alt="{_esc(self.title)}">'
                f"<figcaption>{_esc(self.caption)}</figcaption></figure>"
            )
        parts += [f'<p class="note">{_esc(text)}</p>' for text in self.notes]
        parts.append("</section>")
        return "\n".join(parts)


@dataclass
class Report:
    """A report: a title, summary lines and sections; :meth:`to_html` writes the page."""

    title: str
    summary: list[str]
    sections: list[Section]

    def section(self, id: str) -> Section:
        """The section with this ``id``.

        Raises:
            KeyError: no such section.
        """
        for section in self.sections:
            if section.id == id:
                return section
        raise KeyError(f"no section {id!r}; sections: {', '.join(s.id for s in self.sections)}")

    def to_html(self) -> str:
        """One HTML page that needs nothing else: no network, scripts or fonts."""
        links = " ".join(f'<a href="#{s.id}">{_esc(s.title)}</a>' for s in self.sections)
        summary = "".join(f"<li>{_esc(line)}</li>" for line in self.summary)
        body = "\n".join(section.to_html() for section in self.sections)
        return (
            "<!DOCTYPE html>\n"
            '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{_esc(self.title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
            f'<h1>{_esc(self.title)}</h1>\n<ul class="summary">{summary}</ul>\n'
            f"<nav>{links}</nav>\n{body}\n</body>\n</html>\n"
        )

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the page atomically (a temporary file, then a rename); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # plain open: the umask's mode
        try:
            tmp.write_text(self.to_html(), encoding="utf-8")
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return path


def _table(header: list[str], rows: list[list[str]]) -> str:
    """An HTML table; a row whose first cell is set starts a group (a line above it)."""
    head = "".join(f"<th>{_esc(cell)}</th>" for cell in header)
    body = []
    for n, row in enumerate(rows):
        group = ' class="group"' if n and row[0] else ""
        cells = "".join(f"<td>{_esc(cell)}</td>" for cell in row)
        body.append(f"<tr{group}>{cells}</tr>")
    rows_html = "\n".join(body)
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{rows_html}\n</tbody>\n</table>"


def _esc(text: str) -> str:
    return html.escape(str(text), quote=True)
