#!/bin/sh
echo "coverage reports need remote_coverage_tools, which cannot be fetched offline" >&2
exit 1
