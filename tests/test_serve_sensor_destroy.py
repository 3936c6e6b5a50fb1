"""`serve`: a listening camera destroyed without ``stop()`` ends its stream as CARLA does, and the
client process exits cleanly (issue 15, ``tutorial.py``).

CARLA's server closes every subscriber connection of a destroyed sensor (``ASensor::EndPlay`` ->
``Dispatcher::CloseStream`` -> ``MultiStreamState::ClearSessions`` -> ``ServerSession::Close``: a
socket shutdown, no closing message), and so does serve (``StreamServer.unregister``). The wheel's
``ServerSideSensor::Destroy()`` calls ``Stop()`` itself while listening; a batch ``DestroyActor``
does not, so there the server's close is what ends the stream. Each case runs in a child process
(the wheel aborts a process, it does not raise) on the real ``carla`` wheel.
"""

import pytest

pytest.importorskip("carla")
from served_world import run_client_script

SCRIPT = r"""
import sys, time, carla
port, how = int(sys.argv[1]), sys.argv[2]
client = carla.Client("127.0.0.1", port)
client.set_timeout(20.0)
world = client.get_world()
lib = world.get_blueprint_library()
car = world.spawn_actor(lib.find("vehicle.tesla.model3"), world.get_map().get_spawn_points()[0])
cam = world.spawn_actor(lib.find("sensor.camera.rgb"), carla.Transform(carla.Location(z=2.0)), attach_to=car)
frames = []
cam.listen(lambda image: frames.append(image.frame))
deadline = time.time() + 20.0
while len(frames) < 3 and time.time() < deadline:
    time.sleep(0.05)
before = len(frames)
if how == "batch":
    results = client.apply_batch_sync([carla.command.DestroyActor(cam.id), carla.command.DestroyActor(car.id)])
    assert not any(r.error for r in results), [r.error for r in results]
else:
    cam.destroy()  # listening, no stop() first: as tutorial.py
    car.destroy()
time.sleep(0.5)
after = len(frames) - before
left = len(world.get_actors().filter("sensor.*"))
print("RESULT", before, after, left, flush=True)
"""


@pytest.mark.parametrize("how", ["destroy", "batch"])
def test_a_listening_camera_destroyed_without_stop_exits_cleanly(how):
    out = run_client_script(SCRIPT.replace("sys.argv[2]", repr(how)), timeout_s=90.0)
    assert out.returncode == 0, (out.returncode, out.stderr[-2000:])
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT")]
    assert line, out.stdout[-2000:] + out.stderr[-2000:]
    before, after, left = map(int, line[0].split()[1:])
    assert before >= 3  # the camera did stream
    assert after <= 1  # at most a frame already on its way when the stream ended
    assert left == 0  # the sensor is gone from the world
