#!/usr/bin/env bash
# The exact steps that made carla_agent/models/pilotnet.keras (about 10 minutes
# of collection and 40 of training on a 2-core CPU). Datasets go to data/ (ignored by git).
set -euo pipefail
cd "$(dirname "$0")/.."
py() { python3 -m carla_agent "$@"; }

# 1. The expert with noise injection on every embedded scenario, 2 episodes each.
py collect --out data/clean --episodes 2 --seed 0
# 2. A first model, trained on that alone.
py train --data data/clean --out data/first/pilotnet.keras --epochs 20 --patience 4
# 3. The same scenarios under every weather preset in turn.
py collect --out data/weather --episodes 2 --seed 100 \
    --weathers clear_noon,overcast,fog,rain,sunset,night,night_rain,dusk
# 4. DAgger: the first model drives (plus noise), the expert labels every frame.
py collect --out data/dagger --episodes 2 --seed 200 --driver-model data/first/pilotnet.keras
# 5. The shipped model, on all three.
py train --data data/clean,data/weather,data/dagger --out carla_agent/models/pilotnet.keras \
    --epochs 14 --patience 4
mkdir -p docs/training
mv carla_agent/models/pilotnet_training_curves.png carla_agent/models/pilotnet_metrics.json docs/training/
# 6. The README's table.
python3 tools/scenario_table.py
