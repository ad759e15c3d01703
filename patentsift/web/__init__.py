"""The web application: FastAPI + Jinja2 pages and a JSON API (create_app in patentsift.web.app)."""
