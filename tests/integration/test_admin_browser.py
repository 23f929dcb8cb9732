"""The admin page in a real browser (Chromium through Playwright), with real Anki clients.

Every page is saved as a screenshot under ``test-artifacts/admin/``, at desktop and phone width.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from ankisyncd.users.hashing import hash_password
from tests.support.browser import DESKTOP, PHONE, Tab, chromium
from tests.support.clients import Device
from tests.support.compare import FULL_SYNC, NO_CHANGES
from tests.support.server import ServerProcess

ADMIN_PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@pytest.fixture
def admin_server(tmp_path: Path) -> Iterator[ServerProcess]:
    env = {"ANKISYNCD_ADMIN_PASSWORD_HASH": hash_password(ADMIN_PASSWORD)}
    proc = ServerProcess(tmp_path / "data", env).start()
    try:
        yield proc
    finally:
        proc.stop()


def open_tab(browser: Browser, phone: bool = False) -> Tab:
    return Tab(browser.new_context(viewport=PHONE if phone else DESKTOP))


def log_in(tab: Tab, server: ServerProcess) -> Page:
    page = tab.page
    page.goto(server.url + "admin/")
    page.get_by_label("Admin password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Users")).to_be_visible()
    return page


def add_user(page: Page, name: str, password: str, again: str | None = None) -> None:
    form = page.locator("form", has=page.get_by_role("button", name="Add user"))
    form.get_by_label("Name").fill(name)
    form.get_by_label("Password", exact=True).fill(password)
    form.get_by_label("Password again").fill(password if again is None else again)
    form.get_by_role("button", name="Add user").click()


def nav(page: Page, name: str) -> Locator:
    return page.get_by_role("navigation").get_by_role("link", name=name)


def assert_no_csp_violations(tab: Tab) -> None:
    assert not [m for m in tab.console if "Content Security Policy" in m], tab.console


def test_wrong_admin_password_is_refused(browser: Browser, admin_server: ServerProcess) -> None:
    tab = open_tab(browser)
    page = tab.page
    response = page.goto(admin_server.url + "admin/users")
    assert response is not None
    expect(page.get_by_role("heading", name="Admin login")).to_be_visible()
    tab.shot("login")
    page.get_by_label("Admin password").fill("not the password")
    with page.expect_response(re.compile(r"/admin/login$")) as answer:
        page.get_by_role("button", name="Log in").click()
    assert answer.value.status == 403
    expect(page.get_by_role("alert")).to_have_text("Wrong password.")
    tab.shot("login-refused")
    page.goto(admin_server.url + "admin/users")
    expect(page.get_by_role("heading", name="Admin login")).to_be_visible()
    assert "not the password" not in admin_server.log()
    assert "admin at 127.0.0.1: login failed" in admin_server.log()
    assert_no_csp_violations(tab)


def test_admin_logins_are_throttled_like_sync_logins(browser: Browser, tmp_path: Path) -> None:
    env = {
        "ANKISYNCD_ADMIN_PASSWORD_HASH": hash_password(ADMIN_PASSWORD),
        "ANKISYNCD_LOGIN_FAILURES_PER_ADDRESS": "3",
    }
    server = ServerProcess(tmp_path / "data", env).start()
    try:
        tab = open_tab(browser)
        page = tab.page
        page.goto(server.url + "admin/login")
        for _ in range(3):
            page.get_by_label("Admin password").fill("guess")
            page.get_by_role("button", name="Log in").click()
            expect(page.get_by_role("alert")).to_have_text("Wrong password.")
        page.get_by_label("Admin password").fill(ADMIN_PASSWORD)  # even the right one waits
        with page.expect_response(re.compile(r"/admin/login$")) as answer:
            page.get_by_role("button", name="Log in").click()
        assert answer.value.status == 429
        assert int(answer.value.headers["retry-after"]) > 0
        expect(page.get_by_role("alert")).to_contain_text("Too many failed logins")
        tab.shot("login-throttled")
        assert "admin at 127.0.0.1: login refused: throttled" in server.log()
        # The same buckets as sync logins: this address's sync logins wait too.
        device = Device(tmp_path / "dev")
        server.add_user("hal", "pw")
        refused = device.step("login", user="hal", password="pw", endpoint=server.url)
        assert "error" in refused and refused.get("kind") != "AUTH", refused
    finally:
        server.stop()


def test_user_added_on_the_page_syncs_and_the_page_shows_it(
    browser: Browser, admin_server: ServerProcess, tmp_path: Path
) -> None:
    tab = open_tab(browser)
    page = log_in(tab, admin_server)
    tab.shot("users-empty")
    add_user(page, "bob", "one password", "another")
    expect(page.get_by_role("alert")).to_have_text("The two passwords differ.")
    add_user(page, "bob", "bob's password")
    expect(page.get_by_role("status")).to_have_text("Added user 'bob'.")
    assert "admin at 127.0.0.1: Added user 'bob'." in admin_server.log()
    assert "bob's password" not in admin_server.log()

    device = Device(tmp_path / "bob-phone")
    device.login("bob", "bob's password", admin_server.url)
    results = device.run(
        {"op": "add_notes", "count": 12, "prefix": "bob"},
        {"op": "full_upload"},
        {"op": "add_media", "name": "hello.txt", "text": "hello from bob"},
        {"op": "sync_all"},
    )
    assert not [r for r in results if "error" in r], results

    page.reload()
    row = page.get_by_role("row", name=re.compile("bob"))
    expect(row).to_contain_text("1 files")
    expect(row).to_contain_text("UTC")  # the last sync's time
    expect(row.locator("td").nth(4)).to_have_text("1")  # one device logged in
    tab.shot("users")
    page.get_by_role("link", name="bob", exact=True).click()
    expect(page.get_by_role("heading", name="bob")).to_be_visible()
    expect(page.locator("dl.facts")).to_contain_text("26.09.3 (linux)")  # the client's version
    device_row = page.get_by_role("row", name=re.compile("#1"))
    expect(device_row).to_contain_text("26.09.3 (linux)")
    expect(device_row).to_contain_text("127.0.0.1")
    tab.shot("user")

    # Revoking the device on the page: the client is asked to log in again.
    device_row.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("status")).to_contain_text("Logged out device 1 of 'bob'")
    expect(page.get_by_text("None logged in.")).to_be_visible()
    refused = device.sync()
    assert refused.get("kind") == "AUTH", refused
    device.login("bob", "bob's password", admin_server.url)
    assert device.sync()["required"] == NO_CHANGES
    assert_no_csp_violations(tab)


def test_setting_a_password_on_the_page_logs_the_device_out(
    browser: Browser, admin_server: ServerProcess, tmp_path: Path
) -> None:
    admin_server.add_user("ann", "old password")
    device = Device(tmp_path / "ann-laptop")
    device.login("ann", "old password", admin_server.url)
    assert device.run({"op": "full_upload"}, {"op": "sync"})[1]["required"] == NO_CHANGES
    page = log_in(open_tab(browser), admin_server)
    page.get_by_role("link", name="ann", exact=True).click()
    form = page.locator("form", has=page.get_by_role("button", name="Set password"))
    form.get_by_label("New password", exact=True).fill("new password")
    form.get_by_label("New password again").fill("new password")
    form.get_by_role("button", name="Set password").click()
    expect(page.get_by_role("status")).to_contain_text("must log in again")
    refused = device.sync()
    assert refused.get("kind") == "AUTH", refused
    device.login("ann", "new password", admin_server.url)
    assert device.sync()["required"] == NO_CHANGES


def test_removing_a_user_asks_first(browser: Browser, admin_server: ServerProcess) -> None:
    admin_server.add_user("carl", "pw")
    tab = open_tab(browser)
    page = log_in(tab, admin_server)
    page.get_by_role("link", name="carl", exact=True).click()
    page.get_by_role("link", name="Remove carl…").click()
    expect(page.get_by_role("heading", name="Remove carl?")).to_be_visible()
    tab.shot("remove-confirm")
    page.get_by_role("link", name="Cancel").click()
    assert "carl" in admin_server.cli("user", "list").stdout
    page.get_by_role("link", name="Remove carl…").click()
    page.get_by_role("button", name="Remove carl").click()
    expect(page.get_by_role("status")).to_contain_text("Removed user 'carl'")
    assert "carl" not in admin_server.cli("user", "list").stdout


def test_server_and_connect_pages(
    browser: Browser, admin_server: ServerProcess, tmp_path: Path
) -> None:
    admin_server.add_user("dora", "pw")
    device = Device(tmp_path / "dora")
    assert device.step("login", user="dora", password="wrong", endpoint=admin_server.url)["kind"]
    device.login("dora", "pw", admin_server.url)
    device.run({"op": "full_upload"}, {"op": "sync"})
    tab = open_tab(browser)
    page = log_in(tab, admin_server)
    nav(page, "Server").click()
    expect(page.get_by_role("row", name="full upload 1")).to_be_visible()
    expect(page.get_by_role("row", name="login refused 1")).to_be_visible()
    expect(page.get_by_role("row", name=re.compile("hostKey dora 403"))).to_be_visible()
    tab.shot("server")
    nav(page, "Connect a device").click()
    url = admin_server.url
    expect(page.locator("#sync-url")).to_have_text(url)
    expect(page.get_by_role("row", name=re.compile("AnkiDroid 2.16"))).to_contain_text(url)
    expect(page.get_by_role("row", name=re.compile("2.1.50"))).to_contain_text(
        f"SYNC_ENDPOINT={url}sync/"
    )
    expect(page.locator("figure.qr svg")).to_be_visible()
    tab.shot("connect")
    assert_no_csp_violations(tab)


def test_pages_fit_a_phone_screen(browser: Browser, admin_server: ServerProcess) -> None:
    admin_server.add_user("a-user-with-a-rather-long-name", "pw")
    tab = open_tab(browser, phone=True)
    page = log_in(tab, admin_server)
    for name in ("users", "server", "connect"):
        page.goto(admin_server.url + f"admin/{name}")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{name} is {width} px wide"
        tab.shot(f"phone-{name}")
    page.goto(admin_server.url + "admin/users/a-user-with-a-rather-long-name")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    tab.shot("phone-user")


def test_keyboard_alone_logs_in_and_adds_a_user(
    browser: Browser, admin_server: ServerProcess
) -> None:
    page = open_tab(browser).page
    page.goto(admin_server.url + "admin/login")
    # The field takes the focus by itself (autofocus); typing before it has would lose keys.
    expect(page.get_by_label("Admin password")).to_be_focused()
    page.keyboard.type(ADMIN_PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Users")).to_be_visible()
    page.get_by_label("Name").focus()
    page.keyboard.type("eve")
    page.keyboard.press("Tab")
    page.keyboard.type("pw")
    page.keyboard.press("Tab")
    page.keyboard.type("pw")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text("Added user 'eve'.")


def test_pages_work_without_javascript(browser: Browser, admin_server: ServerProcess) -> None:
    context = browser.new_context(java_script_enabled=False, viewport=DESKTOP)
    page = log_in(Tab(context), admin_server)
    add_user(page, "fay", "pw")
    expect(page.get_by_role("status")).to_have_text("Added user 'fay'.")
    nav(page, "Connect a device").click()
    expect(page.locator("#sync-url")).to_have_text(admin_server.url)
    expect(page.get_by_role("button", name="Copy")).to_be_hidden()  # needs script: stays hidden


def test_restoring_a_snapshot_on_the_page_brings_the_notes_back(
    browser: Browser, admin_server: ServerProcess, tmp_path: Path
) -> None:
    admin_server.add_user("gus", "pw")
    device = Device(tmp_path / "gus")
    device.login("gus", "pw", admin_server.url)
    device.run({"op": "add_notes", "count": 15, "prefix": "keep"}, {"op": "full_upload"})
    tab = open_tab(browser)
    page = log_in(tab, admin_server)
    page.get_by_role("link", name="gus", exact=True).click()
    page.get_by_role("button", name="Take a snapshot now").click()
    expect(page.get_by_role("status")).to_contain_text("Took snapshot")
    expect(page.get_by_role("row", name=re.compile("taken by hand"))).to_contain_text("15 notes")

    # A mistake: most notes deleted, and synced to the server.
    assert device.run({"op": "delete_notes", "count": 12}, {"op": "sync"})[1] == {
        "required": NO_CHANGES,  # what is left to do: the normal sync did it all
        "server_message": "",
    }
    page.reload()
    tab.shot("user-snapshots")
    page.get_by_role("row", name=re.compile("taken by hand")).get_by_role("link").click()
    expect(page.get_by_role("heading", name="Restore gus's collection?")).to_be_visible()
    expect(page.locator(".card")).to_contain_text("Choose Download")
    tab.shot("restore-confirm")
    page.get_by_role("button", name="Restore this snapshot").click()
    expect(page.get_by_role("status")).to_contain_text("choose Download")
    # The replaced collection (3 notes) is itself kept.
    expect(page.get_by_role("row", name=re.compile("before a restore"))).to_contain_text("3 notes")
    assert "admin at 127.0.0.1: Restored" in admin_server.log()

    assert device.sync()["required"] == FULL_SYNC  # the client asks which side wins
    device.run({"op": "full_download"})
    notes = device.dump()["notes"]
    assert len(notes) == 15 and all("keep front" in n[6] for n in notes)
