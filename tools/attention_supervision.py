"""Teach the junction branches to look at the lane they turn into (step 6e of tools/make_shipped_model.sh).

    python tools/attention_supervision.py collect --routes DIR --out data/jt/rrr.npz
    python tools/attention_supervision.py train --data data/jt/rrr.npz --out data/jt/rrr.keras \
        [--lam 1.0] [--epochs 4] [--trunk]
    python tools/attention_supervision.py compose --junction data/jt/rrr.keras --out data/jt/two_trunk.keras

``collect`` drives the noisy expert (as ``python -m carla_agent collect``: seed 700 + k for the k-th
route) on every route YAML in ``--routes`` (e.g. ``tools/random_town_routes.py --per-town 20 --seed 7``)
and keeps the frames with a junction command (LEFT, RIGHT, STRAIGHT): the network input (crop and
resize of the camera), the expert's steer, the command, and the pixels of the route's lane from the
junction's exit to 30 m beyond (:mod:`carla_agent.sim.embedded.lane_mask`) cropped and resized the
same way.

``train`` starts from the shipped model and trains the three junction heads (with ``--trunk`` the conv
trunk too: the stand-in for a junction trunk of its own) on ``MSE + lam * outside``, where
``outside`` is the share of the squared input gradient of the steer that falls outside the lane
(frames where the lane covers at least 0.5 % of the input; "right for the right reasons", Ross et
al. 2017). Every 10th block of 200 frames is held out; each epoch prints MSE and ``outside`` on both.

``compose`` builds a two-trunk model (``build_pilotnet(commands=True, junction_trunk=True)``): the
shipped trunk and heads for LANEFOLLOW and the lane changes, ``--junction``'s trunk (layers
``conv1_junction`` ...) and heads for LEFT, RIGHT and STRAIGHT, checked branch by branch against its
sources. It drives (``bench/bench_towns.py --model``) and is explained branch by branch: the methods
that pick a conv layer take it from the driving branch's trunk (:mod:`carla_agent.saliency.branch`).

``train`` augments the training frames as the recipe does (brightness, shadow, a horizontal shift
with its steering correction; the masks shift along; ``--no-augment`` to turn it off).
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from carla_agent.cli.common import bounded_float  # noqa: E402

SHIPPED = ROOT / "carla_agent" / "models" / "pilotnet.keras"
JUNCTION = (1, 2, 3)  # RoadOption LEFT, RIGHT, STRAIGHT
JUNCTION_HEADS = ("left", "right", "straight")
MIN_AREA = 0.005


def collect(routes_dir: str, out: str, driver_model: str | None = None) -> None:
    from carla_agent.drive.agent import ExpertAgent
    from carla_agent.drive.expert import Expert, NoiseParams
    from carla_agent.drive.runner import RunnerHook
    from carla_agent.drive.session import drive_scenario
    from carla_agent.network.collect import DaggerAgent
    from carla_agent.network.preprocess import Preprocessing
    from carla_agent.sim.embedded.simulator import EmbeddedSimulator
    from carla_agent.sim.scenario import load_scenario

    prep = Preprocessing()
    model = None
    if driver_model:
        from carla_agent.network.steering_model import SteeringModel

        model = SteeringModel.load(driver_model)
    rows: dict = {"images": [], "steer": [], "command": [], "masks": []}

    class Keep(RunnerHook):
        def on_start(self, context, obs) -> None:
            self.sim = context.sim

        def on_step(self, record) -> None:
            obs, sim = record.obs, self.sim
            if obs.command not in JUNCTION or obs.done:
                return
            leg = sim.junction_leg_ahead(JUNCTION)
            if leg is None:
                return
            lane = sim.route_lane_mask(leg[1], leg[1] + 30.0).astype(np.uint8) * 255
            rows["masks"].append(prep.crop_resize(np.repeat(lane[:, :, None], 3, axis=2))[:, :, 0] > 127)
            rows["images"].append(prep.crop_resize(obs.image))
            rows["steer"].append(record.decision.predicted_steer)
            rows["command"].append(obs.command)

    files = sorted(glob.glob(str(Path(routes_dir) / "*.yaml")))
    if not files:
        raise SystemExit(f"--routes {routes_dir}: no route YAML there (make some with tools/random_town_routes.py "
                         "--out DIR --per-town 20 --seed 7)")
    with EmbeddedSimulator(render=True) as sim:
        for k, path in enumerate(files):
            sc = load_scenario(path)
            rng = np.random.default_rng(700 + k)
            agent = ExpertAgent(sc.target_speed_mps * float(rng.uniform(0.8, 1.15)), Expert(noise=NoiseParams(), rng=rng))
            if model is not None:  # DAgger: the model drives (plus the noise), the expert labels
                agent = DaggerAgent(agent, model)
            drive_scenario(sc, agent, sim=sim, seed=700 + k, hooks=[Keep()], intervention_m=1.0)
            print(f"{k + 1}/{len(files)} routes, {len(rows['images'])} junction frames", flush=True)
    np.savez(out, images=np.array(rows["images"]), steer=np.array(rows["steer"], np.float32),
             command=np.array(rows["command"], np.int32), masks=np.array(rows["masks"]))


def train(data: str, out: str, lam: float, epochs: int, trunk: bool, init: str = str(SHIPPED),
          augment: bool = True, min_area: float = MIN_AREA) -> None:
    import keras
    import tensorflow as tf

    from carla_agent.network.augment import Augmenter
    from carla_agent.network.command import command_one_hot
    from carla_agent.network.pilotnet import JUNCTION_SUFFIX, has_junction_trunk
    from carla_agent.network.preprocess import Preprocessing

    parts = []
    for path in data.split(","):
        if not Path(path).is_file():
            raise SystemExit(f"--data {path}: no such file; write it with: {Path(__file__).name} collect --out {path}")
        part = np.load(path)
        missing = sorted({"images", "steer", "masks", "command"} - set(part.files))
        if missing:
            raise SystemExit(f"--data {path}: no array(s) {', '.join(missing)}: not a file from "
                             f"{Path(__file__).name} collect")
        parts.append(part)
    images, steer, masks, commands = (np.concatenate([d[k] for d in parts]) for k in ("images", "steer", "masks", "command"))
    onehot = command_one_hot(commands).astype(np.float32)
    weight = (masks.mean(axis=(1, 2)) >= min_area).astype(np.float32)
    held = (np.arange(len(images)) // 200) % 10 == 9
    train_idx, val_idx = np.flatnonzero(~held), np.flatnonzero(held)
    if not len(val_idx):
        raise SystemExit(f"{data}: {len(images)} frames; the held-out blocks need at least 2,000 (collect more routes)")
    prep = Preprocessing()
    model = keras.models.load_model(init, compile=False)
    heads = {f"{stem}_{b}" for b in JUNCTION_HEADS for stem in ("fc1", "fc2", "fc3", "steer")}
    two = has_junction_trunk(model)  # then only its junction trunk is the turns' own
    for layer in model.layers:
        conv = layer.name.startswith("conv") and (not two or layer.name.endswith(JUNCTION_SUFFIX))
        layer.trainable = layer.name in heads or (trunk and conv)
    variables = model.trainable_variables
    opt = keras.optimizers.Adam(3e-4)
    opt.build(variables)

    @tf.function
    def step(x, oh, y, m, w, update):
        with tf.GradientTape() as outer:
            with tf.GradientTape() as inner:
                inner.watch(x)
                p = model([x, oh], training=False)[:, 0]
                total = tf.reduce_sum(p)
            g = inner.gradient(total, x)
            energy = tf.reduce_sum(g * g, axis=-1)
            outside = tf.reduce_sum(energy * (1.0 - m), axis=(1, 2)) / (tf.reduce_sum(energy, axis=(1, 2)) + 1e-12)
            mse = tf.reduce_mean((p - y) ** 2)
            penalty = tf.reduce_sum(outside * w) / (tf.reduce_sum(w) + 1e-6)
            loss = mse + lam * penalty
        if update:
            opt.apply_gradients(zip(outer.gradient(loss, variables), variables))
        return mse, penalty

    augmenter = Augmenter(0) if augment else None  # the recipe's: brightness, shadow, shift (junction frames never flip)

    def batch(b, update):
        x, y, m = images[b], steer[b], masks[b]
        if update and augmenter is not None:
            x, y, _, m = augmenter(x, y, commands[b], m)
        return (tf.constant(prep.to_input(x).astype(np.float32)), tf.constant(onehot[b]), tf.constant(y),
                tf.constant(m.astype(np.float32)), tf.constant(weight[b]), update)

    def run(idx, update):
        out_ = [step(*batch(b, update)) for b in (idx[k:k + 64] for k in range(0, len(idx), 64))]
        return tuple(float(np.mean([float(o[i]) for o in out_])) for i in (0, 1))

    print("before: held-out MSE %.5f, outside %.3f" % run(val_idx, False), flush=True)
    rng = np.random.default_rng(0)
    for epoch in range(1, epochs + 1):
        t0 = time.time()
        rng.shuffle(train_idx)
        a, b = run(train_idx, True), run(val_idx, False)
        print(f"epoch {epoch}: train MSE {a[0]:.5f}, outside {a[1]:.3f} | held-out MSE {b[0]:.5f}, outside "
              f"{b[1]:.3f} | {time.time() - t0:.0f} s", flush=True)
    model.save(out)
    meta = json.loads(Path(init).with_suffix(".json").read_text())
    rounds = meta.get("attention_supervision", {}).get("rounds", [])
    rounds.append({"data": data.split(","), "frames": int(len(images)), "init": init, "lam": lam, "min_area": min_area,
                   "epochs": epochs, "augment": augment, "trunk": trunk, "held_out_mse": round(b[0], 5),
                   "held_out_outside": round(b[1], 4), "date": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())})
    meta["attention_supervision"] = {"rounds": rounds}
    Path(out).with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")


def compose(junction_path: str, out: str, base: str = str(SHIPPED)) -> None:
    import keras

    from carla_agent.network.command import COMMAND_ORDER
    from carla_agent.network.pilotnet import JUNCTION_SUFFIX, build_pilotnet, has_junction_trunk

    ship = keras.models.load_model(base, compile=False)
    junction = keras.models.load_model(junction_path, compile=False)
    own = has_junction_trunk(junction)  # a two-trunk model: its junction trunk, not its lane trunk
    model = build_pilotnet(tuple(ship.inputs[0].shape[1:]), dropout=0.0, commands=True, junction_trunk=True)
    for layer in model.layers:
        if not layer.get_weights():
            continue
        name = layer.name
        if name.endswith(JUNCTION_SUFFIX):
            src, name = junction, (name if own else name[:-len(JUNCTION_SUFFIX)])
        else:
            src = junction if name.split("_")[-1] in JUNCTION_HEADS else ship
        layer.set_weights(src.get_layer(name).get_weights())
    x = np.random.default_rng(0).uniform(0, 255, (4,) + tuple(model.inputs[0].shape[1:])).astype(np.float32)
    for k, o in enumerate(COMMAND_ORDER):
        oh = np.zeros((4, len(COMMAND_ORDER)), np.float32)
        oh[:, k] = 1.0
        src = junction if o.name.lower() in JUNCTION_HEADS else ship
        if not np.allclose(model.predict([x, oh], verbose=0), src.predict([x, oh], verbose=0), atol=1e-5):
            raise SystemExit(f"branch {o.name} differs from its source")
    model.save(out)
    meta = json.loads(Path(base).with_suffix(".json").read_text())
    sidecar = Path(junction_path).with_suffix(".json")
    junction_meta = json.loads(sidecar.read_text()) if sidecar.is_file() else {}
    meta["junction_trunk"] = {"from": junction_path, "layers": f"conv1{JUNCTION_SUFFIX}..conv5{JUNCTION_SUFFIX}, "
                              "fc1..steer of left, right, straight",
                              **{k: v for k, v in junction_meta.items() if k == "attention_supervision"}}
    Path(out).with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"two-trunk model: {out}")


def _epochs(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 1000:
        raise argparse.ArgumentTypeError(f"--epochs expects a whole number of epochs, 1 to 1000, got {text!r}")
    return int(text)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="what", required=True)
    c = sub.add_parser("collect")
    c.add_argument("--routes", required=True, help="folder of route YAMLs")
    c.add_argument("--out", required=True, help=".npz to write")
    c.add_argument("--driver-model", help="DAgger: this model drives (a two-trunk one from compose), the expert labels")
    t = sub.add_parser("train")
    t.add_argument("--data", required=True, help="comma-separated .npz files from collect")
    t.add_argument("--init", default=str(SHIPPED), help="the model to start from (default: the shipped one)")
    t.add_argument("--out", required=True, help=".keras to write")
    t.add_argument("--lam", type=bounded_float("--lam", "a weight", 0.0, 100.0, low_included=True), default=1.0, help="weight of the outside-the-lane share")
    t.add_argument("--epochs", type=_epochs, default=4)
    t.add_argument("--trunk", action="store_true", help="train the conv trunk too")
    t.add_argument("--min-area", type=bounded_float("--min-area", "a share of the input", 0.0, 1.0), default=MIN_AREA,
                   help="the penalty applies where the lane covers at least this share of the input (default "
                        f"{MIN_AREA}; higher keeps it off the approach, where the lane is a sliver)")
    t.add_argument("--augment", action=argparse.BooleanOptionalAction, default=True,
                   help="augment the training frames as the recipe does (brightness, shadow, shift; masks shift along)")
    m = sub.add_parser("compose")
    m.add_argument("--junction", required=True, help="the model whose trunk and junction heads to take")
    m.add_argument("--base", default=str(SHIPPED), help="the model whose trunk and heads lane following and the "
                   "lane changes keep (default: the shipped one)")
    m.add_argument("--out", required=True)
    a = p.parse_args(argv)
    if a.what == "collect":
        collect(a.routes, a.out, a.driver_model)
    elif a.what == "train":
        train(a.data, a.out, a.lam, a.epochs, a.trunk, a.init, a.augment, a.min_area)
    else:
        compose(a.junction, a.out, a.base)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
