#!/usr/bin/env bash
# The Leaderboard 2.0 evaluator (unmodified) against `python -m carla_agent serve`, on every route of
# scenarios/leaderboard/routes_towns.xml, then ScenarioRunner 0.9.16's FollowLeadingVehicle and
# ControlLoss on grid_small; one summary table at the end (tools/leaderboard_results_table.py).
#
#   tools/run_leaderboard_serve.sh [ours|npc|sr|all ...]      (default: ours sr)
#
# Paths (environment variables; defaults are where docs/leaderboard.md "Installing" put them):
#   LEADERBOARD_ROOT      the Leaderboard, branch leaderboard-2.0             (default /tmp/lb)
#   SCENARIO_RUNNER_ROOT  ScenarioRunner, branch leaderboard-2.0              (default /tmp/sr_lb2)
#   SR_0916               ScenarioRunner v0.9.16, for scenario_runner.py      (default /tmp/sr)
#   CARLA_PYTHONAPI       the folder holding CARLA's `agents` package         (default /tmp/carla_pythonapi)
#   PYTHON                a Python with carla, carla_agent's requirements, py-trees 0.8.3...
#                                                                             (default /tmp/lbenv/bin/python)
#   OUT                   where results, logs and the agent's runs go         (default runs/leaderboard_serve)
#   AGENT_CONFIG          our agent's --agent-config       (default scenarios/leaderboard/agent.yaml)
#   ROUTES                the routes file                  (default scenarios/leaderboard/routes_towns.xml)
#   REPETITIONS           (default 2)      PORT, TM_PORT   (default 2000, 8000)
#   NICE                  niceness of every process started (default 10)
set -u
HERE=$(cd "$(dirname "$0")/.." && pwd)
cd "$HERE"
LEADERBOARD_ROOT=${LEADERBOARD_ROOT:-/tmp/lb}
SCENARIO_RUNNER_ROOT=${SCENARIO_RUNNER_ROOT:-/tmp/sr_lb2}
SR_0916=${SR_0916:-/tmp/sr}
CARLA_PYTHONAPI=${CARLA_PYTHONAPI:-/tmp/carla_pythonapi}
PYTHON=${PYTHON:-/tmp/lbenv/bin/python}
OUT=${OUT:-runs/leaderboard_serve}
AGENT_CONFIG=${AGENT_CONFIG:-scenarios/leaderboard/agent.yaml}
ROUTES=${ROUTES:-scenarios/leaderboard/routes_towns.xml}
REPETITIONS=${REPETITIONS:-2}
PORT=${PORT:-2000}
TM_PORT=${TM_PORT:-8000}
NICE=${NICE:-10}
WHAT=${*:-ours sr}
[ "$WHAT" = all ] && WHAT="ours npc sr"

for d in "$LEADERBOARD_ROOT/leaderboard" "$SCENARIO_RUNNER_ROOT/srunner" "$SR_0916/srunner" "$CARLA_PYTHONAPI/agents"; do
    [ -d "$d" ] || { echo "missing $d: see docs/leaderboard.md 'Installing'" >&2; exit 2; }
done
mkdir -p "$OUT"
export SDL_VIDEODRIVER=dummy SDL_AUDIODRIVER=dummy MPLBACKEND=Agg TF_CPP_MIN_LOG_LEVEL=2
export LEADERBOARD_ROOT SCENARIO_RUNNER_ROOT
LB_PATH="$HERE/tools/leaderboard_compat:$LEADERBOARD_ROOT:$SCENARIO_RUNNER_ROOT:$CARLA_PYTHONAPI:$HERE"
SR_PATH="$SR_0916:$CARLA_PYTHONAPI:$HERE"

SERVE_PID=
start_serve() {  # $1 town, $2 log
    nice -n "$NICE" "$PYTHON" -m carla_agent serve --town "$1" --port "$PORT" >"$2" 2>&1 &
    SERVE_PID=$!
    for _ in $(seq 120); do
        grep -q "Ctrl-C to stop" "$2" 2>/dev/null && return 0
        kill -0 "$SERVE_PID" 2>/dev/null || { echo "serve died: $2" >&2; return 1; }
        sleep 1
    done
    echo "serve did not come up: $2" >&2; return 1
}
stop_serve() {
    [ -n "$SERVE_PID" ] && kill "$SERVE_PID" 2>/dev/null && wait "$SERVE_PID" 2>/dev/null
    SERVE_PID=
}
trap stop_serve EXIT

run_evaluator() {  # $1 name, $2 agent module, $3 agent config ('' for none)
    local dir="$OUT/$1"; mkdir -p "$dir"; rm -f "$dir/results.json"
    start_serve grid_small "$dir/serve.log" || return 1
    local cfg=(); [ -n "$3" ] && cfg=(--agent-config "$3")
    local t0=$SECONDS
    PYTHONPATH="$LB_PATH" nice -n "$NICE" "$PYTHON" "$LEADERBOARD_ROOT/leaderboard/leaderboard_evaluator.py" \
        --host localhost --port "$PORT" --traffic-manager-port "$TM_PORT" \
        --routes "$ROUTES" --repetitions "$REPETITIONS" --agent "$2" "${cfg[@]}" \
        --checkpoint "$dir/results.json" >"$dir/evaluator.log" 2>&1
    local rc=$?
    echo "$rc $((SECONDS - t0))" >"$dir/exit_code_and_wall_s"
    echo "$1: evaluator exit code $rc, $((SECONDS - t0)) s wall"
    stop_serve
}

run_sr() {  # $1 scenario name in scenarios/leaderboard/scenario_runner/grid_small.xml
    local dir="$OUT/sr/$1"; mkdir -p "$dir"
    start_serve grid_small "$dir/serve.log" || return 1
    nice -n "$NICE" "$PYTHON" tools/drive_hero.py --port "$PORT" --agents "$CARLA_PYTHONAPI" \
        --spawn -100 1.75 0 >"$dir/drive_hero.log" 2>&1 &
    local hero=$!
    for _ in $(seq 180); do grep -q "agent ready" "$dir/drive_hero.log" 2>/dev/null && break; sleep 1; done
    local t0=$SECONDS
    (cd "$dir" && PYTHONPATH="$SR_PATH" nice -n "$NICE" "$PYTHON" "$SR_0916/scenario_runner.py" \
        --scenario "$1" --configFile "$HERE/scenarios/leaderboard/scenario_runner/grid_small.xml" \
        --sync --waitForEgo --port "$PORT" --trafficManagerPort "$TM_PORT" --output --json \
        --outputDir . >scenario_runner.log 2>&1)
    local rc=$?
    echo "$rc $((SECONDS - t0))" >"$dir/exit_code_and_wall_s"
    echo "$1: scenario_runner exit code $rc, $((SECONDS - t0)) s wall"
    kill "$hero" 2>/dev/null; wait "$hero" 2>/dev/null
    stop_serve
}

for w in $WHAT; do
    case $w in
        ours) run_evaluator ours carla_agent/leaderboard/entry/pilotnet_agent.py "$AGENT_CONFIG" ;;
        npc) run_evaluator npc "$LEADERBOARD_ROOT/leaderboard/autoagents/npc_agent.py" "" ;;
        sr) run_sr FollowLeadingVehicle_grid_small; run_sr ControlLoss_grid_small ;;
        *) echo "unknown part '$w': expected ours, npc, sr or all" >&2; exit 2 ;;
    esac
done
"$PYTHON" tools/leaderboard_results_table.py "$OUT" "$ROUTES"
