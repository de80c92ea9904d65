#!/usr/bin/env bash
# usage: expect-exit.sh CODE CMD [ARGS...]
# Runs CMD with its stdout and stderr passed through and succeeds only if it
# exits with exactly CODE (lit's `not` accepts any non-zero code).
want=$1
shift
"$@"
got=$?
if [ "$got" -ne "$want" ]; then
  echo "expect-exit.sh: '$*' exited with $got, expected $want" >&2
  exit 1
fi
exit 0
