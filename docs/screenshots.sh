#!/usr/bin/env bash
# Regenerates docs/admin-status.png, the status page of docs/ADMIN.md: a
# runner with 3 instances under paced load and a crash every 10 s for 45 s,
# rendered and checked in headless Chromium by TestAdminStatusPageInBrowser
# (which then writes the screenshot). Needs chromium (Debian: apt-get install
# chromium). About a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
GOANGEL_UPDATE_SCREENSHOT=1 go test -count=1 -run '^TestAdminStatusPageInBrowser$' ./production/
echo "docs/admin-status.png updated"
