#!/usr/bin/env bash
# Runs every Fuzz* target in the module for the given time each (issue 22
# item 6):
#   - minimisation has its own budget (FUZZMINIMIZETIME, default 10x: ten executions to shrink each new input), so a
#     target keeps fuzzing instead of spending its slot shrinking inputs;
#   - a failure that wrote no crasher (a toolchain flake: "context deadline
#     exceeded", a worker lost) is tried once more and never stops the run;
#   - each target's executions are reported, and every parser target must
#     reach MIN_EXECS (default 10000) in its slot;
#   - FUZZ_PKGS limits the run to some packages (import paths);
#   - the exit code is 1 when a target wrote a crasher, failed twice, or a
#     parser target fell short; the summary names which.
set -uo pipefail
cd "$(dirname "$0")/.."
fuzztime=${1:-10s}
mintime=${FUZZMINIMIZETIME:-10x}
minexecs=${MIN_EXECS:-10000}
logdir=$(mktemp -d)
trap 'rm -rf "$logdir"' EXIT

# Targets that drive whole signed HTTP handlers or key derivations rather
# than one parser: their executions are reported but not held to MIN_EXECS.
handlers=" FuzzIntake FuzzAssistedIntake FuzzAuthorize FuzzBook FuzzCarrierEvent FuzzGrant FuzzRegister FuzzRevealGranted FuzzLoginRequest FuzzClientAnswers FuzzVerifyHeaders FuzzVerifyResponse FuzzOrderForm FuzzOpen FuzzOpenMaster FuzzHorner "

crashers() { ls "$1/testdata/fuzz/$2" 2>/dev/null | sort; }

summary=()
ok=0 flaky=0 failed=0 short=0
for pkg in ${FUZZ_PKGS:-$(go list ./...)}; do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    result=""
    execs=0
    for try in 1 2; do
      again=""
      if [ "$try" -eq 2 ]; then again=", second try"; fi
      echo "fuzz: $pkg $target ($fuzztime, minimise ${mintime}${again})"
      before=$(crashers "$dir" "$target")
      log="$logdir/$target.$try.log"
      go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -fuzzminimizetime "$mintime" "$pkg" 2>&1 | tee "$log"
      rc=${PIPESTATUS[0]}
      execs=$(grep -o 'execs: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || true)
      execs=${execs:-0}
      new=$(comm -13 <(echo "$before") <(crashers "$dir" "$target") | grep . || true)
      if [ "$rc" -eq 0 ]; then
        result=${result:+ok after a flake}
        result=${result:-ok}
        break
      fi
      if [ -n "$new" ]; then
        result="FAILED: crasher testdata/fuzz/$target/$new"
        break
      fi
      reason=$(grep -m1 -E 'context deadline exceeded|fuzzing process|panic|FAIL|error' "$log" | cut -c1-100)
      echo "fuzz: $target failed without writing a crasher (${reason:-rc $rc}); trying once more"
      result="flaky"
    done
    if [ "$result" = flaky ]; then
      result="FAILED twice, no crasher"
    fi
    case $result in
      ok) ok=$((ok + 1)) ;;
      "ok after a flake") ok=$((ok + 1)); flaky=$((flaky + 1)) ;;
      *) failed=$((failed + 1)) ;;
    esac
    kind=parser
    if [[ $handlers == *" $target "* ]]; then kind=handler; fi
    if [ "$kind" = parser ] && [[ $result == ok* ]] && [ "$execs" -lt "$minexecs" ]; then
      result="$result, BELOW $minexecs executions"
      short=$((short + 1))
    fi
    summary+=("$(printf '%-22s %-28s %-8s %10s  %s' "$target" "${pkg#orderseal/}" "$kind" "$execs" "$result")")
  done
done

echo
printf '%-22s %-28s %-8s %10s  %s\n' TARGET PACKAGE KIND EXECS RESULT
printf '%s\n' "${summary[@]}"
total=${#summary[@]}
echo "fuzz: $total targets, $ok ok ($flaky after a flake), $failed failed, $short parser targets below $minexecs executions"
[ "$failed" -eq 0 ] && [ "$short" -eq 0 ]
