#!/usr/bin/env bash
# Every public header compiles on its own: a user includes any one of them
# first, so each must include what it uses. Runs the compiler in syntax-only
# mode on a translation unit that includes just that header, one per core.
set -uo pipefail
cxx=${CXX:-g++}
check() {
  local name=${1#include/}
  if ! printf '#include "%s"\n' "$name" | "$2" -std=c++20 -fsyntax-only -Wall -Wextra -Werror -Iinclude -x c++ - ; then
    echo "FAIL: $name does not compile on its own" >&2
    return 1
  fi
}
export -f check
count=$#
failed=$(printf '%s\n' "$@" | xargs -P "$(nproc)" -I{} bash -c 'check "$1" "$2" || echo x' _ {} "$cxx" | grep -c x)
echo "$count headers, $failed failed to compile on their own"
[ "$count" -gt 0 ] && [ "$failed" -eq 0 ]
