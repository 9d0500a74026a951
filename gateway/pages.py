"""The pages: static HTML, CSS and plain JavaScript served by the app itself.

No build step and no CDN: a nurse station or a service centre on an isolated
network gets the same pages. Each page checks the session through the API and
sends the browser to /login when there is none.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from gateway.i18n import catalogue

STATIC = Path(__file__).parent / "static"
_PAGES = {
    "/console": "console.html",
    "/console/floor": "floor.html",
    "/console/devices": "devices.html",
    "/console/coverage": "coverage.html",
    "/console/field": "board.html",
    "/family": "family.html",
    "/field": "field.html",
    "/login": "login.html",
}
# Security headers (CSP and the rest) are added to every response by
# gateway.security.BrowserSecurity.
_HEADERS = {"Cache-Control": "no-cache"}


def mount(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    strings = catalogue()

    def page(filename: str):  # type: ignore[no-untyped-def]
        async def serve() -> FileResponse:
            return FileResponse(STATIC / filename, media_type="text/html", headers=_HEADERS)

        return serve

    for path, filename in _PAGES.items():
        app.add_api_route(path, page(filename), include_in_schema=False, methods=["GET"])

    async def i18n() -> JSONResponse:
        return JSONResponse(strings, headers={"Cache-Control": "no-cache"})

    async def root() -> RedirectResponse:
        return RedirectResponse("/console")

    app.add_api_route("/i18n.json", i18n, include_in_schema=False, methods=["GET"])
    app.add_api_route("/", root, include_in_schema=False, methods=["GET"])
