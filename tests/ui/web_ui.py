"""A reviewer at Airlock's web page, in headless Chromium (Debian's /usr/bin/chromium,
driven by Playwright; no browser is downloaded). Started by tests/web_ui.rs, which parks
the calls first and checks what the agents saw afterwards.

    python tests/ui/web_ui.py SPEC.json

SPEC: {"base": "http://127.0.0.1:PORT", "bob": TOKEN, "owner": TOKEN,
       "attach_id": "apr-…", "xss_id": "apr-…", "policy_arn": "arn:…",
       "artifacts": DIR}

Each step leaves a screenshot DIR/NN-step.png. Exits non-zero, saying which step and
why, at the first thing a reviewer would see go wrong; prints "N passed, 0 failed" at the
end otherwise.
"""

import json
import os
import re
import sys

from playwright.sync_api import expect, sync_playwright

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class Reviewer:
    def __init__(self, page, spec):
        self.page = page
        self.spec = spec
        self.base = spec["base"]
        self.shots = 0
        self.steps = 0

    def step(self, name):
        """Count a passed step and keep its screenshot."""
        self.steps += 1
        self.shots += 1
        path = os.path.join(self.spec["artifacts"], f"{self.shots:02d}-{name}.png")
        self.page.screenshot(path=path, full_page=True)
        print(f"ok {self.steps} {name} ({path})", flush=True)

    def notice(self):
        return self.page.locator("#notice")

    def sign_in(self, token):
        self.page.goto(f"{self.base}/ui")
        expect(self.page).to_have_url(f"{self.base}/ui/sign-in")
        self.page.fill("#token", token)
        self.page.click("form.sign-in button[type=submit]")

    def sign_out(self):
        self.page.click("form.sign-out button[type=submit]")
        expect(self.page).to_have_url(f"{self.base}/ui/sign-in")

    def open_approval(self, approval_id):
        self.page.goto(f"{self.base}/ui")
        self.page.click(f'#pending a[href="/ui/approvals/{approval_id}"]')
        expect(self.page).to_have_url(f"{self.base}/ui/approvals/{approval_id}")


def run(spec):
    seen_urls = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_FLAGS
        )
        context = browser.new_context(viewport={"width": 1200, "height": 900})
        context.on("request", lambda request: seen_urls.append(request.url))
        page = context.new_page()
        page.set_default_timeout(15_000)
        scripts_ran = []
        page.on("console", lambda m: scripts_ran.append(m.text))
        page.on("dialog", lambda d: (scripts_ran.append(d.message), d.dismiss()))
        r = Reviewer(page, spec)
        base = spec["base"]

        # Signed out, /ui leads to the sign-in form.
        page.goto(f"{base}/ui")
        expect(page).to_have_url(f"{base}/ui/sign-in")
        expect(page.locator("h1")).to_have_text("Sign in")
        r.step("sign-in-form")

        # A wrong token is refused, and says so.
        r.sign_in("airlock_not-a-real-token")
        expect(r.notice()).to_contain_text("That is not an approver token")
        expect(page.locator("form.sign-out")).to_have_count(0)
        r.step("wrong-token-refused")

        # The agent's owner signs in, sees the pending call, and may not approve it.
        r.sign_in(spec["owner"])
        expect(page).to_have_url(f"{base}/ui")
        expect(page.locator("header .who")).to_contain_text("dev@example.com")
        expect(page.locator("#pending")).to_contain_text("iam:AttachRolePolicy")
        r.step("owner-list")
        r.open_approval(spec["attach_id"])
        page.click("#approve button[type=submit]")
        expect(r.notice()).to_contain_text("Your vote was not counted")
        expect(r.notice()).to_contain_text(
            "dev@example.com owns the agent that made this call"
        )
        expect(page.locator(".state").first).to_have_text("pending")
        expect(page.locator("#votes")).to_have_count(0)
        r.step("owner-refused")
        r.sign_out()

        # Bob signs in. The call with hostile parameters shows them as text.
        r.sign_in(spec["bob"])
        expect(page.locator("header .who")).to_contain_text("bob@example.com")
        r.open_approval(spec["xss_id"])
        expect(page.locator("#params")).to_contain_text(
            '"RoleName": "<script>window.__pwned=1;console.log(\'pwned\')</script>"'
        )
        expect(page.locator("#params")).to_contain_text(
            r'"PolicyArn": "<img src=x onerror=\"alert(1)\">"'
        )
        expect(page.locator("#reason")).to_contain_text(
            '<a href="https://evil.example/">click to approve</a>'
        )
        expect(page.locator('a[href="https://evil.example/"]')).to_have_count(0)
        expect(page.locator("main script, main img")).to_have_count(0)
        assert page.evaluate("typeof window.__pwned") == "undefined", "a script ran"
        r.step("hostile-parameters-are-text")

        # A denial needs a reason (the browser will not send the form without one)…
        page.click("#deny button[type=submit]")
        expect(page).to_have_url(f"{base}/ui/approvals/{spec['xss_id']}")
        expect(r.notice()).to_have_count(0)
        expect(page.locator(".state").first).to_have_text("pending")
        # …and with one, it is recorded and shown in the history.
        page.fill("#deny-reason", "not this role <b>ever</b>")
        page.click("#deny button[type=submit]")
        expect(r.notice()).to_have_text("You denied this call. It is now denied.")
        expect(page.locator(".state").first).to_have_text("denied")
        expect(page.locator("#votes")).to_contain_text("not this role <b>ever</b>")
        expect(page.locator("#votes")).to_contain_text("web")
        r.step("denied-with-reason")
        page.goto(f"{base}/ui")
        history = page.locator("#history")
        expect(history).to_contain_text(
            "Denied by bob@example.com: not this role <b>ever</b>"
        )
        expect(page.locator(f'#pending a[href="/ui/approvals/{spec["xss_id"]}"]')).to_have_count(0)
        r.step("history")

        # The attach call: the full context, then approve.
        r.open_approval(spec["attach_id"])
        expect(page.locator("#agent")).to_have_text("test-agent")
        expect(page.locator("#owner")).to_have_text("dev@example.com")
        expect(page.locator("#actions")).to_contain_text("iam:AttachRolePolicy")
        expect(page.locator("#actions")).to_contain_text("Permissions management")
        expect(page.locator("#rule")).to_have_text("iam-policies")
        expect(page.locator("#message")).to_have_text("Attaching a policy.")
        expect(page.locator("#params")).to_contain_text(spec["policy_arn"])
        expect(page.locator("#params")).to_contain_text('"RoleName": "web-held"')
        expect(page.locator("#progress")).to_have_text("0 of 1 approval from security")
        expect(page.locator("#expires")).to_have_text(re.compile(r"^\d{4}-\d\d-\d\dT"))
        r.step("approval-detail")
        page.fill("#approve-reason", "read-only policy")
        page.click("#approve button[type=submit]")
        expect(r.notice()).to_have_text("You approved this call. It is now approved.")
        expect(page.locator(".state").first).to_have_text("approved")
        expect(page.locator("#votes")).to_contain_text("bob@example.com")
        expect(page.locator(".decide")).to_have_count(0)
        r.step("approved")
        page.goto(f"{base}/ui")
        expect(page.locator("#history")).to_contain_text("Approved by bob@example.com")
        r.step("history-after-approval")
        r.sign_out()
        browser.close()

    assert not [m for m in scripts_ran if "pwned" in m or m == "1"], scripts_ran
    for token in (spec["bob"], spec["owner"], "airlock_not-a-real-token"):
        leaked = [u for u in seen_urls if token in u]
        assert not leaked, f"a token appeared in a URL: {leaked}"
    assert seen_urls, "no requests were recorded"
    print(f"web_ui.py: {len(seen_urls)} URLs visited, none with a token", flush=True)
    return r.steps


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    os.makedirs(spec["artifacts"], exist_ok=True)
    steps = run(spec)
    print(f"{steps} passed, 0 failed")


if __name__ == "__main__":
    main()
