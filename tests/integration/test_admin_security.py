"""The admin page over raw HTTP: off by default, cookies, CSRF, headers, its own bind address."""

from __future__ import annotations

import re
import ssl
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from ankisyncd.users.hashing import hash_password
from tests.support.server import ServerProcess, free_port
from tests.support.tls import tls_env, tls_init

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ADMIN_PASSWORD = "admin secret"
PAGES = ["users", "server", "connect", "users/zoe", "users/zoe/remove"]


@pytest.fixture(scope="module")
def admin_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("admin")
    env = {"ANKISYNCD_ADMIN_PASSWORD_HASH": hash_password(ADMIN_PASSWORD)}
    proc = ServerProcess(tmp / "data", env)
    proc.add_user("zoe", "pw")
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def form_token(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


@contextmanager
def logged_in(server: ServerProcess) -> Iterator[tuple[httpx.Client, str]]:
    """A client with an admin session, and the session's CSRF token."""
    with httpx.Client(base_url=server.url + "admin") as client:
        page = client.get("/login")
        data = {"csrf": form_token(page.text), "password": ADMIN_PASSWORD}
        answer = client.post("/login", data=data)
        assert answer.status_code == 303, answer.text
        users = client.get("/users")
        assert users.status_code == 200
        yield client, form_token(users.text)


def users_in(server: ServerProcess) -> str:
    return server.cli("user", "list").stdout


def test_admin_is_404_when_no_password_is_set(server: ServerProcess) -> None:
    for path in ["admin/", "admin/login", "admin/users", "admin/static/admin.css"]:
        assert httpx.get(server.url + path).status_code == 404
    assert httpx.post(server.url + "admin/login", data={"password": "x"}).status_code == 404


def test_pages_need_a_login(admin_server: ServerProcess) -> None:
    with httpx.Client(base_url=admin_server.url + "admin") as client:
        for path in PAGES:
            answer = client.get("/" + path)
            assert answer.status_code == 303 and answer.headers["location"] == "/admin/login"
        bogus = client.get("/users", headers={"cookie": "ankisyncd_admin=made-up"})
        assert bogus.status_code == 303
        refused = client.post("/users/add", data={"name": "x", "password": "p", "password2": "p"})
        assert refused.status_code == 403
    assert "\nx\t" not in users_in(admin_server)


def test_session_cookie_flags(admin_server: ServerProcess) -> None:
    with httpx.Client(base_url=admin_server.url + "admin") as client:
        page = client.get("/login")
        data = {"csrf": form_token(page.text), "password": ADMIN_PASSWORD}
        answer = client.post("/login", data=data)
        assert client.get("/users").status_code == 200
    cookie = next(
        c for c in answer.headers.get_list("set-cookie") if c.startswith("ankisyncd_admin=")
    )
    flags = [f.strip().lower() for f in cookie.split(";")[1:]]
    assert "httponly" in flags
    assert "samesite=strict" in flags
    assert "max-age=3600" in flags  # expires with admin_session_minutes (default 60)
    assert "path=/admin/" in flags
    assert "secure" not in flags  # plain http here: a Secure cookie would never come back


def test_post_without_the_csrf_token_is_refused(admin_server: ServerProcess) -> None:
    with logged_in(admin_server) as (client, token):
        fields = {"name": "mallory", "password": "p", "password2": "p"}
        assert client.post("/users/add", data=fields).status_code == 403
        assert (
            client.post("/users/add", data={**fields, "csrf": token[:-1] + "x"}).status_code == 403
        )
        assert client.post("/users/zoe/remove", data={}).status_code == 403
        assert client.post("/logout", data={}).status_code == 403
        listed = users_in(admin_server)
        assert "mallory" not in listed and "zoe" in listed
        assert client.post("/users/add", data={**fields, "csrf": token}).status_code == 303
        assert "mallory" in users_in(admin_server)
        assert "admin at 127.0.0.1: /admin/users/add refused: bad CSRF token" in admin_server.log()


def test_login_without_its_form_token_is_refused(admin_server: ServerProcess) -> None:
    with httpx.Client(base_url=admin_server.url + "admin") as client:
        answer = client.post("/login", data={"password": ADMIN_PASSWORD})
        assert answer.status_code == 403
        assert "ankisyncd_admin=" not in answer.headers.get("set-cookie", "")
        assert client.get("/users").status_code == 303


def test_logout_ends_the_session(admin_server: ServerProcess) -> None:
    with logged_in(admin_server) as (client, token):
        cookie = client.cookies["ankisyncd_admin"]
        assert client.post("/logout", data={"csrf": token}).status_code == 303
        replayed = httpx.get(
            admin_server.url + "admin/users", headers={"cookie": f"ankisyncd_admin={cookie}"}
        )
        assert replayed.status_code == 303  # the old cookie no longer opens a page


def test_every_answer_carries_the_security_headers(admin_server: ServerProcess) -> None:
    with logged_in(admin_server) as (client, _):
        answers = [client.get("/" + p) for p in PAGES]
        answers += [
            client.get("/static/admin.css"),
            client.get("/nothing-here"),
            client.get("/login"),
        ]
        for answer in answers:
            csp = answer.headers["content-security-policy"]
            assert "frame-ancestors 'none'" in csp
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp
            assert answer.headers["x-frame-options"] == "DENY"
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert answer.headers["cache-control"] == "no-store"
        for answer in answers[: len(PAGES)]:
            html = answer.text
            assert "<script>" not in html and not re.search(r"<script(?![^>]*\bsrc=)", html)
            assert not re.search(r"\son[a-z]+=", html)  # no inline event handlers
            assert not re.search(r"\sstyle=", html)  # no inline styles
            assert not re.search(r"(src|href)=\"(https?:)?//", html)  # nothing from elsewhere


def test_the_admin_page_can_have_an_address_of_its_own(tmp_path: Path) -> None:
    admin_port = free_port()
    env = {
        "ANKISYNCD_ADMIN_PASSWORD_HASH": hash_password(ADMIN_PASSWORD),
        "ANKISYNCD_ADMIN_HOST": "127.0.0.1",
        "ANKISYNCD_ADMIN_PORT": str(admin_port),
    }
    server = ServerProcess(tmp_path / "data", env).start()
    try:
        assert httpx.get(server.url + "admin/login").status_code == 404
        admin = f"http://127.0.0.1:{admin_port}/"
        assert httpx.get(admin + "admin/login").status_code == 200
        assert httpx.get(admin).headers["location"] == "/admin/"
        assert httpx.get(admin + "sync/meta").status_code == 404
    finally:
        server.stop()
    assert "Finished server process" in server.log()


def test_set_password_writes_the_config_file_and_enables_the_page(tmp_path: Path) -> None:
    config = tmp_path / "ankisyncd.toml"
    config.write_text("# my settings\nlog_level = 'info'\n")
    server = ServerProcess(tmp_path / "data", {"ANKISYNCD_CONFIG": str(config)})
    result = server.cli("admin", "set-password", "--password-stdin", stdin="s3cret pass\n")
    assert result.returncode == 0, result.stderr
    text = config.read_text()
    assert text.startswith("# my settings\nlog_level = 'info'\n")
    assert tomllib.loads(text)["admin_password_hash"].startswith("$argon2id$")
    assert "s3cret" not in text and "s3cret" not in result.stdout
    again = server.cli("admin", "set-password", "--password-stdin", stdin="second\n")
    assert again.returncode == 0 and config.read_text().count("admin_password_hash") == 1
    assert "Secret('**********')" in server.cli("config", "show").stdout
    server.start()
    try:
        with httpx.Client(base_url=server.url + "admin") as client:
            page = client.get("/login")
            answer = client.post(
                "/login", data={"csrf": form_token(page.text), "password": "second"}
            )
            assert answer.status_code == 303
    finally:
        server.stop()


def test_a_bad_admin_hash_stops_start_up(offline_config: ServerProcess) -> None:
    offline_config.env["ANKISYNCD_ADMIN_PASSWORD_HASH"] = "$argon2id$v=19$broken"
    result = offline_config.cli("serve")
    assert result.returncode == 2
    assert "error: ANKISYNCD_ADMIN_PASSWORD_HASH: not a valid argon2 PHC string" in result.stderr
    offline_config.env["ANKISYNCD_ADMIN_PASSWORD_HASH"] = "plain text"
    result = offline_config.cli("serve")
    assert result.returncode == 2 and "not an argon2 PHC string" in result.stderr


@pytest.fixture
def offline_config(tmp_path: Path) -> ServerProcess:
    return ServerProcess(tmp_path / "data")


def test_under_tls_the_cookie_is_secure_and_the_connect_page_offers_the_ca(
    tmp_path: Path,
) -> None:
    tls_init(tmp_path / "tls", "localhost", "127.0.0.1")
    ca = tmp_path / "tls" / "ca.pem"
    env = {
        **tls_env(tmp_path / "tls"),
        "ANKISYNCD_ADMIN_PASSWORD_HASH": hash_password(ADMIN_PASSWORD),
    }
    server = ServerProcess(tmp_path / "data", env)
    server.url_host = "localhost"
    server.start()
    try:
        with httpx.Client(base_url=server.url + "admin", verify=ssl_context(ca)) as client:
            page = client.get("/login")
            data = {"csrf": form_token(page.text), "password": ADMIN_PASSWORD}
            answer = client.post("/login", data=data)
            assert answer.status_code == 303
            cookie = answer.headers.get_list("set-cookie")[0]
            assert cookie.startswith("ankisyncd_admin=") and "; Secure" in cookie
            connect = client.get("/connect")
            assert f'<code id="sync-url">https://localhost:{server.port}/</code>' in connect.text
            assert ca.read_text().strip() in connect.text.replace("&#43;", "+")
            download = client.get("/connect/ca.pem")
            assert download.content == ca.read_bytes()
    finally:
        server.stop()


def ssl_context(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))
