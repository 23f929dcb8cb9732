"""Admin login and logout; ``guarded`` wraps every other page: a session, and CSRF on POST.

The login form carries a CSRF token too (a double-submit cookie), so another site cannot log a
browser in to this page under the attacker's control.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from ankisyncd.admin.context import Admin, log, read_form
from ankisyncd.admin.sessions import COOKIE
from ankisyncd.errors import LoginThrottled
from ankisyncd.users.hashing import verify_password

LOGIN_COOKIE = "ankisyncd_admin_login"
# The name the admin's failed logins count against, beside the address: the same throttle as
# sync logins; no user can have it (user names have no control characters).
THROTTLE_NAME = "\x00admin"
Page = Callable[[Admin, Request], Awaitable[Response]]


def _cookie(admin: Admin, request: Request, response: Response, name: str, value: str) -> None:
    response.set_cookie(
        name,
        value,
        max_age=admin.sessions.lifetime,
        path=request.scope.get("root_path", "") + "/",
        secure=request.url.scheme == "https",  # a cookie marked Secure is never sent over http
        httponly=True,
        samesite="strict",
    )


async def login_page(admin: Admin, request: Request) -> Response:
    if admin.sessions.get(request.cookies.get(COOKIE)):
        return admin.redirect(request, "/users")
    return _login_form(admin, request, None, 200)


def _login_form(admin: Admin, request: Request, error: str | None, status: int) -> Response:
    token = secrets.token_urlsafe(32)
    response = admin.render(request, "login.html", status, login_csrf=token, error=error)
    _cookie(admin, request, response, LOGIN_COOKIE, token)
    return response


async def login(admin: Admin, request: Request) -> Response:
    form = await read_form(request)
    where = admin.address(request)
    expected = request.cookies.get(LOGIN_COOKIE, "")
    given = form.get("csrf", "")
    if not expected or not secrets.compare_digest(expected.encode(), given.encode()):
        log.info("admin at %s: login refused: missing or wrong form token", where)
        return _login_form(admin, request, "The form expired. Please try again.", 403)
    phc, password = str(admin.settings.admin_password_hash), form.get("password", "")
    try:
        ok = await admin.server.checked_login(
            where, THROTTLE_NAME, lambda: verify_password(phc, password) or None
        )
    except LoginThrottled as exc:
        log.info("admin at %s: login refused: throttled", where)
        error = f"Too many failed logins. Try again in {exc.retry_after} seconds."
        response = _login_form(admin, request, error, 429)
        response.headers["retry-after"] = str(exc.retry_after)
        return response
    if not ok:
        log.info("admin at %s: login failed: wrong password", where)
        return _login_form(admin, request, "Wrong password.", 403)
    token, _ = admin.sessions.create(where)
    log.info("admin at %s: logged in", where)
    response = admin.redirect(request, "/users")
    _cookie(admin, request, response, COOKIE, token)
    response.delete_cookie(LOGIN_COOKIE, path=request.scope.get("root_path", "") + "/")
    return response


async def logout(admin: Admin, request: Request) -> Response:
    admin.sessions.end(request.cookies.get(COOKIE))
    log.info("admin at %s: logged out", admin.address(request))
    response = admin.redirect(request, "/login")
    response.delete_cookie(COOKIE, path=request.scope.get("root_path", "") + "/")
    return response


def guarded(admin: Admin, page: Page) -> Callable[[Request], Awaitable[Response]]:
    """``page`` for a logged-in admin only; a POST must carry the session's CSRF token."""

    async def endpoint(request: Request) -> Response:
        session = admin.sessions.get(request.cookies.get(COOKIE))
        if session is None:
            if request.method != "GET":
                return Response("login needed", status_code=403, media_type="text/plain")
            return admin.redirect(request, "/login")
        if request.method == "POST":
            form = await read_form(request)
            if not session.csrf_ok(form.get("csrf")):
                log.info(
                    "admin at %s: %s refused: bad CSRF token",
                    admin.address(request),
                    request.url.path,
                )
                return Response("bad CSRF token", status_code=403, media_type="text/plain")
            request.scope["admin_form"] = form
        request.scope["admin_session"] = session
        return await page(admin, request)

    return endpoint
