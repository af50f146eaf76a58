"""Procedural chest X-rays: the library's embedded default data.

Every image is drawn from closed-form shapes on a coordinate grid, so the whole library runs
anywhere with no download. Each case has

* anatomy: body outline, two asymmetric lung fields (the patient's left lung, on the image's
  right, is smaller and carries the cardiac notch), heart, mediastinum and spine, posterior and
  anterior ribs, clavicles, diaphragm domes, hilar vessels and mild lung texture;
* an exact binary lung mask (both lungs, heart excluded, as in the SCR / Montgomery masks);
* for pneumonia, 1-3 patchy opacities confined to the lungs, about a quarter of them subtle;
* a hospital "site" acquisition style (:class:`SiteStyle`): intensity curve, window, noise,
  blur, field of view, collimation border and burned-in markers.

Display polarity is the radiological one: air dark, bone and soft tissue bright.

Geometry lives in *canonical* chest coordinates (the chest spans about ``[-1, 1]`` in x, y points
down) so that a case looks the same at every ``image_size``; only pixel noise depends on the
size. Image ``i`` of a call is drawn from its own child seed, so it does not depend on ``n``.
"""

from multimix.data.synthetic.generator import generate_arrays, generate_records
from multimix.data.synthetic.styles import SITES, SiteStyle

__all__ = ["SITES", "SiteStyle", "generate_arrays", "generate_records"]
