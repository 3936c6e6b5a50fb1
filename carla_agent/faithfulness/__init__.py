"""Faithfulness measures for saliency maps of a regression (steering) output.

Every measure is a pure function of a *model callable* ``f(images) -> (N,)``
(the explained output, e.g. steering), the model inputs ``(N, H, W, C)``
float32 and the maps ``(N, H, W)``; all forward passes are batched. One module
per measure:

- :mod:`.deletion` -- deletion / insertion curves and their AUC on |delta f|,
  blurred baseline (Petsiuk et al. 2018), plus reference maps (random, Sobel).
- :mod:`.shift` -- NVIDIA's shift test (Bojarski et al. 2017, arXiv 1704.07911).
- :mod:`.flip` -- flip equivariance of the output and of the map.
- :mod:`.road` -- share of map mass on road / markings against their area share.
- :mod:`.stability` -- SSIM between maps of consecutive, similar-steering frames.
- :mod:`.randomisation` -- model randomisation sanity check (Adebayo et al. 2018).
- :mod:`.similarity` -- SSIM (NumPy/OpenCV) and Spearman rank correlation.

No module here imports TensorFlow: the network side (running a model, cloning and
randomising its layers) lives in :mod:`carla_agent.network`.
"""

from carla_agent.faithfulness.baseline import blur_baseline
from carla_agent.faithfulness.deletion import CurveResult, deletion_insertion, random_maps, sobel_maps
from carla_agent.faithfulness.flip import FlipResult, flip_equivariance
from carla_agent.faithfulness.road import RoadAttention, road_attention
from carla_agent.faithfulness.shift import ShiftResult, shift_test
from carla_agent.faithfulness.similarity import spearman, ssim
from carla_agent.faithfulness.stability import temporal_stability
from carla_agent.network.steering_model import steer_function


__all__ = ["blur_baseline", "CurveResult", "deletion_insertion", "random_maps", "sobel_maps", "FlipResult",
           "flip_equivariance", "RoadAttention", "road_attention", "ShiftResult", "shift_test", "spearman", "ssim",
           "temporal_stability", "steer_function"]
