"""UI strings in Chinese and English, and how a request's language is chosen (pure)."""

from __future__ import annotations

from collections.abc import Mapping

LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "en"

STRINGS: dict[str, dict[str, str]] = {
    "app.name": {"en": "patentsift", "zh": "patentsift 专利推送"},
    "nav.search": {"en": "Search", "zh": "检索"},
    "nav.login": {"en": "Log in", "zh": "登录"},
    "nav.logout": {"en": "Log out", "zh": "退出"},
    "nav.language": {"en": "Language", "zh": "语言"},
    "nav.curation": {"en": "Curation", "zh": "审核"},
    "nav.profiles": {"en": "Profiles", "zh": "关注主题"},
    "nav.directory": {"en": "Organizations & contacts", "zh": "企业与联系人"},
    "nav.subscriptions": {"en": "Subscriptions", "zh": "订阅"},
    "nav.reports": {"en": "Reports", "zh": "工作报表"},
    "nav.menu": {"en": "Main menu", "zh": "主菜单"},
    "nav.outlet": {"en": "Outlet", "zh": "服务网点"},
    "nav.user": {"en": "Signed in as", "zh": "当前用户"},
    "nav.api": {"en": "API documentation", "zh": "API 文档"},
    "login.title": {"en": "Staff login", "zh": "工作人员登录"},
    "login.email": {"en": "E-mail", "zh": "电子邮箱"},
    "login.password": {"en": "Password", "zh": "密码"},
    "login.submit": {"en": "Log in", "zh": "登录"},
    "login.failed": {"en": "Wrong e-mail address or password.", "zh": "邮箱或密码错误。"},
    "login.throttled": {"en": "Too many login attempts; wait a minute and try again.",
                        "zh": "登录尝试过多，请一分钟后再试。"},
    "search.title": {"en": "Search patents", "zh": "专利检索"},
    "search.placeholder": {"en": "e.g. ti:battery AND ipc:H01M*", "zh": "例如 ti:battery AND ipc:H01M*"},
    "search.submit": {"en": "Search", "zh": "检索"},
    "search.syntax": {"en": "Query syntax", "zh": "检索语法"},
    "search.syntax_help": {
        "en": "Words are ANDed; use OR, NOT, parentheses and \"phrases\". Fields: ti ab cl desc pa in ipc cpc "
              "pd ad pn cc kind. Prefix: wire*. Dates: pd:[2020-01-01 TO 2020-12-31] or pd:2020.",
        "zh": "多个词默认为“与”；可用 OR、NOT、括号和\"短语\"。字段：ti ab cl desc pa in ipc cpc pd ad pn cc kind。"
              "前缀：wire*。日期：pd:[2020-01-01 TO 2020-12-31] 或 pd:2020。"},
    "search.error": {"en": "Invalid query", "zh": "检索式有误"},
    "search.position": {"en": "at position", "zh": "位置"},
    "search.results": {"en": "results", "zh": "条结果"},
    "search.none": {"en": "No documents match.", "zh": "没有匹配的文献。"},
    "search.facets": {"en": "Refine", "zh": "筛选"},
    "search.next": {"en": "Next", "zh": "下一页"},
    "search.previous": {"en": "Previous", "zh": "上一页"},
    "facet.ipc": {"en": "IPC", "zh": "IPC 分类"},
    "facet.cpc": {"en": "CPC", "zh": "CPC 分类"},
    "facet.applicant": {"en": "Applicant", "zh": "申请人"},
    "facet.year": {"en": "Year", "zh": "年份"},
    "facet.country": {"en": "Country", "zh": "国家/地区"},
    "facet.kind": {"en": "Kind", "zh": "文献类型"},
    "doc.publication_date": {"en": "Published", "zh": "公开日"},
    "doc.application": {"en": "Application", "zh": "申请号"},
    "doc.application_date": {"en": "Filed", "zh": "申请日"},
    "doc.applicants": {"en": "Applicants", "zh": "申请人"},
    "doc.inventors": {"en": "Inventors", "zh": "发明人"},
    "doc.priorities": {"en": "Priorities", "zh": "优先权"},
    "doc.abstract": {"en": "Abstract", "zh": "摘要"},
    "doc.claims": {"en": "Claims", "zh": "权利要求"},
    "doc.description": {"en": "Description", "zh": "说明书"},
    "doc.classifications": {"en": "Classifications", "zh": "分类号"},
    "doc.citations": {"en": "Citations", "zh": "引用文献"},
    "doc.similar": {"en": "More like this", "zh": "相似文献"},
    "doc.no_similar": {"en": "No similar documents (no vectors are indexed).", "zh": "没有相似文献（索引中没有向量）。"},
    "doc.not_found": {"en": "No such document.", "zh": "没有该文献。"},
    "error.title": {"en": "Error", "zh": "错误"},
    "apidocs.title": {"en": "API documentation", "zh": "API 文档"},
    "apidocs.intro": {"en": "The REST API under /api: log in first (session cookie); unsafe methods need the "
                            "X-CSRF-Token header. The machine-readable description:",
                      "zh": "REST API 位于 /api 下：请先登录（会话 Cookie）；修改类请求需带 X-CSRF-Token 请求头。"
                            "机器可读的接口描述："},
    "apidocs.contents": {"en": "Contents", "zh": "目录"},
    "apidocs.schemas": {"en": "Schemas", "zh": "数据结构"},
    "apidocs.parameters": {"en": "Parameters", "zh": "参数"},
    "apidocs.body": {"en": "Request body", "zh": "请求体"},
    "apidocs.responses": {"en": "Responses", "zh": "响应"},
    "apidocs.name": {"en": "Name", "zh": "名称"},
    "apidocs.in": {"en": "In", "zh": "位置"},
    "apidocs.type": {"en": "Type", "zh": "类型"},
    "apidocs.description": {"en": "Description", "zh": "说明"},
    "apidocs.required": {"en": "required", "zh": "必填"},
    "error.forbidden": {"en": "You may not do this.", "zh": "您无权执行此操作。"},
}


def register_strings(strings: Mapping[str, Mapping[str, str]]) -> None:
    """Add (or override) UI strings: a room's route module calls this with its own keys at import."""
    for key, texts in strings.items():
        STRINGS.setdefault(key, {}).update(texts)


def translate(key: str, lang: str) -> str:
    """The string for `key` in `lang`, else in English, else the key itself (a missing string shows, not fails)."""
    texts = STRINGS.get(key)
    if not texts:
        return key
    return texts.get(lang) or texts.get(DEFAULT_LANGUAGE) or key


def negotiate(accept_language: str | None) -> str:
    """The first supported language in an Accept-Language header (quality order), else the default."""
    if not accept_language:
        return DEFAULT_LANGUAGE
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        ranked.append((-q, i, tag.strip().lower().split("-")[0]))
    for _, _, lang in sorted(ranked):
        if lang in LANGUAGES:
            return lang
    return DEFAULT_LANGUAGE
