"""Work-account reports for a period: figures per outlet and organization with monthly charts (pygal SVG images
from /reports/charts/{measure}.svg, the same charts as the CLI's HTML report), CSV download.
Staff see their own outlet's report; an administrator sees every outlet's, or one."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from distribution.charts import measure_chart
from distribution.reports import (
    LABELS,
    MEASURES,
    Report,
    build_report,
    csv_text,
    figures_dict,
)
from patentsift.web.auth import CurrentUser
from patentsift.web.deps import get_session, language, templates
from patentsift.web.i18n import translate
from subscribers.models import Outlet, StaffUser

router = APIRouter()
DbSession = Annotated[Session, Depends(get_session)]
MAX_DAYS = 3660


def _period(start: date | None, end: date | None) -> tuple[date, date]:
    """The asked period (default: the last 30 days up to today), checked."""
    end = end or date.today()
    start = start or end - timedelta(days=29)
    if start > end:
        raise HTTPException(422, f"the period starts ({start}) after it ends ({end})")
    if (end - start).days > MAX_DAYS:
        raise HTTPException(422, f"the period may span at most {MAX_DAYS} days")
    return start, end


def _outlet_name(session: Session, user: StaffUser, outlet_id: int | None) -> str | None:
    """Which outlet the report covers: staff always their own (another one answers 404); an admin any or all."""
    if user.role != "admin":
        if outlet_id is not None and outlet_id != user.outlet_id:
            raise HTTPException(404, f"no outlet with id {outlet_id}")
        return user.outlet.name
    if outlet_id is None:
        return None
    outlet = session.get(Outlet, outlet_id)
    if outlet is None:
        raise HTTPException(404, f"no outlet with id {outlet_id}")
    return outlet.name


def _report(request: Request, session: Session, user: StaffUser, start: date | None, end: date | None,
            outlet_id: int | None) -> Report:
    lo, hi = _period(start, end)
    return build_report(session, lo, hi, outlet=_outlet_name(session, user, outlet_id),
                        harvest_state=request.app.state.cfg.state_path)


def report_csv(report: Report) -> str:
    """The report as CSV text (distribution.reports.csv_text: write_csv's rows, formula cells escaped)."""
    return csv_text(report)


class FiguresOut(BaseModel):
    harvested: int | None
    matches: int
    selected: int
    sent: int
    failed: int
    unsubscribes: int


class RowOut(BaseModel):
    level: str
    outlet: str
    organization: str
    figures: FiguresOut


class ReportOut(BaseModel):
    start: date
    end: date
    outlet: str | None
    rows: list[RowOut]
    monthly: dict[str, FiguresOut]


@router.get("/api/reports", response_model=ReportOut, tags=["reports"])
def api_report(request: Request, user: CurrentUser, session: DbSession, start: date | None = None,
               end: date | None = None, outlet_id: int | None = None) -> ReportOut:
    r = _report(request, session, user, start, end, outlet_id)
    return ReportOut(start=r.start, end=r.end, outlet=r.outlet,
                     rows=[RowOut(level=x.level, outlet=x.outlet, organization=x.organization,
                                  figures=FiguresOut.model_validate(figures_dict(x.figures))) for x in r.rows],
                     monthly={k: FiguresOut.model_validate(figures_dict(v)) for k, v in r.monthly.items()})


def _query(r: Report, outlet_id: int | None) -> str:
    params: dict[str, object] = {"start": r.start, "end": r.end}
    if outlet_id is not None:
        params["outlet_id"] = outlet_id
    return urlencode(params)


@router.get("/reports", include_in_schema=False)
def reports_page(request: Request, user: CurrentUser, session: DbSession, start: date | None = None,
                 end: date | None = None, outlet_id: int | None = None) -> Response:
    r = _report(request, session, user, start, end, outlet_id)
    lang = language(request)
    query = _query(r, outlet_id)
    charts = [(m, translate(f"measure.{m}", lang), f"/reports/charts/{m}.svg?{query}&lang={lang}") for m in MEASURES]
    outlets = list(session.query(Outlet).order_by(Outlet.name)) if user.role == "admin" else []
    return templates.TemplateResponse(request, "reports.html", {
        "report": r, "measures": MEASURES, "charts": charts, "outlets": outlets, "outlet_id": outlet_id})


@router.get("/reports/charts/{measure}.svg", include_in_schema=False)
def report_chart(request: Request, measure: Literal["harvested", "matches", "selected", "sent", "failed",
                                                    "unsubscribes"],
                 user: CurrentUser, session: DbSession, start: date | None = None, end: date | None = None,
                 outlet_id: int | None = None, lang: Literal["zh", "en"] | None = None) -> Response:
    """One measure's chart by month (pygal SVG, no script), for an <img> on the report page; the same outlet
    scoping as the page."""
    r = _report(request, session, user, start, end, outlet_id)
    title = translate(f"measure.{measure}", lang or language(request)) or LABELS[measure]
    return Response(measure_chart(r, measure, title), media_type="image/svg+xml; charset=utf-8",
                    headers={"Cache-Control": "private, max-age=60"})


@router.get("/reports.csv", include_in_schema=False)
def reports_csv(request: Request, user: CurrentUser, session: DbSession, start: date | None = None,
                end: date | None = None, outlet_id: int | None = None) -> Response:
    r = _report(request, session, user, start, end, outlet_id)
    name = f"patentsift-report-{r.start}-{r.end}.csv"
    return Response(report_csv(r), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
