#!/usr/bin/env bash
# Every public header compiles on its own: a user includes any one of them
# first, so each must include what it uses. Runs the compiler in syntax-only
# mode on a translation unit that includes just that header.
set -uo pipefail
cxx=${CXX:-g++}
failed=0
count=0
for header in "$@"; do
  name=${header#include/}
  count=$((count + 1))
  if ! printf '#include "%s"\n' "$name" | "$cxx" -std=c++20 -fsyntax-only -Wall -Wextra -Werror -Iinclude -x c++ - ; then
    echo "FAIL: $name does not compile on its own" >&2
    failed=$((failed + 1))
  fi
done
echo "$count headers, $failed failed to compile on their own"
[ "$count" -gt 0 ] && [ "$failed" -eq 0 ]
