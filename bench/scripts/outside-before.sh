#!/usr/bin/env bash
# The "before" of issue 26: bench/scripts/outside.sh against goangel as of
# commit OLD (default 791bc96, the code before issue 26's changes), built with
# this tree's bench apps. Prints a markdown section (bench/report.sh stores it
# in bench/results/outside-before.md).
#
#   bash bench/scripts/outside-before.sh
#   OLD=abc1234 ROUNDS=2 bash bench/scripts/outside-before.sh
OLD=${OLD:-791bc96} exec bash "$(dirname "$0")/outside.sh"
