"""The embedded simulator's camera renderer: RGB and semantic frames of the road model.

:class:`Renderer` (in :mod:`~carla_agent.sim.embedded.render.renderer`) holds the
state and runs the passes in order; each pass lives in the module named after
what it draws: ``sky``, ``ground`` and ``marks``, ``shadows``, ``shading``
(light and fog), ``things`` (the far-to-near painter of ``objects``,
``roadside``, ``trees``, ``buildings`` and ``vehicles``) and ``rain``;
``polygons`` clips and projects, ``palette`` holds the colours.
"""

from carla_agent.sim.embedded.render.renderer import Renderer

__all__ = ["Renderer"]
