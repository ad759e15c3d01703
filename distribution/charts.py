"""Report charts drawn with pygal (SVG, no script): one bar chart per measure over the report's months, the same
figures in the web page (served as SVG images under the app's CSP) and in the CLI's HTML report (inline)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

import pygal
from lxml import etree
from pygal.style import Style

from distribution.i18n import DEFAULT_LANGUAGE, translate
from distribution.reports import LABELS, MEASURES, Report

_STYLE = Style(background="white", plot_background="white", foreground="#222", foreground_strong="#222",
               foreground_subtle="#666", colors=("#3b6ea5",), font_family="sans-serif",
               label_font_size=13, major_label_font_size=13, value_font_size=12, title_font_size=16,
               value_label_font_size=12)


def bar_chart_svg(title: str, points: Iterable[tuple[str, int]], *, width: int = 560, height: int = 300) -> str:
    """One bar per (label, value), the value printed on its bar; SVG text without an XML declaration or scripts
    (pygal's tooltip script is left out, so the chart shows the same with scripts blocked)."""
    pts = list(points)
    chart = pygal.Bar(title=title, style=_STYLE, width=width, height=height, show_legend=False, js=[],
                      disable_xml_declaration=True, print_values=True, x_label_rotation=-30 if len(pts) > 6 else 0,
                      min_scale=1, max_scale=5, explicit_size=False, truncate_label=-1, margin=12)
    chart.x_labels = [label for label, _ in pts]
    chart.add(title, [value for _, value in pts])
    tree = chart.render_tree()
    for script in tree.findall(".//{http://www.w3.org/2000/svg}script") + tree.findall(".//script"):
        script.getparent().remove(script)  # pygal's config script: nothing reads it with js=[]
    for comment in tree.xpath("//comment()"):
        comment.getparent().remove(comment)  # pygal's credits (links to its site)
    return str(etree.tostring(tree, encoding="unicode"))


def measure_chart(report: Report, measure: str, title: str) -> str:
    """The chart of one measure of `report`, by month."""
    if measure not in MEASURES:
        raise ValueError(f"unknown measure {measure!r}: use one of {', '.join(MEASURES)}")
    return bar_chart_svg(title, [(month, getattr(figs, measure) or 0) for month, figs in report.monthly.items()])


def report_charts(report: Report, title: Callable[[str], str] = LABELS.__getitem__) -> list[tuple[str, str]]:
    """(measure, SVG) for every measure, titled by `title(measure)`."""
    return [(m, measure_chart(report, m, title(m))) for m in MEASURES]


def render_html(report: Report, lang: str = DEFAULT_LANGUAGE) -> str:
    """The CLI's HTML report (distribution/templates/report.html) in `lang` ('en' or 'zh'), with the pygal charts
    inline, titled in the same language."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape
    from markupsafe import Markup

    env = Environment(loader=FileSystemLoader(Path(__file__).with_name("templates")),
                      autoescape=select_autoescape(["html"]))
    charts = report_charts(report, lambda m: translate(f"measure.{m}", lang))
    return env.get_template("report.html").render(
        report=report, measures=MEASURES, charts=[Markup(svg) for _, svg in charts], lang=lang,
        t=lambda key, **values: translate(key, lang, **values),
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        value=lambda figs, m: "" if getattr(figs, m) is None else getattr(figs, m))
