#!/usr/bin/env sh
# Prints the version to stamp into kubectl-mcs: a semantic version with a
# leading v, as krew requires of a plugin manifest. On a release tag that is
# the tag (v0.2.0); past it, the tag plus commits (v0.2.0-3-gabcdef0); before
# the first tag, v0.0.0-gabcdef0. -dirty marks uncommitted changes.
v=$(git describe --tags --match 'v[0-9]*' --always --dirty 2>/dev/null) || v=""
case "$v" in
v[0-9]*) echo "$v" ;;
"") echo "v0.0.0-dev" ;;
# The g keeps a hash made only of digits from reading as a number with a
# leading zero, which semver forbids.
*) echo "v0.0.0-g$v" ;;
esac
