"""Anatomy of the synthetic hand phantom: a left hand, PA view, in millimetres.

Everything here is geometry in a *hand frame* (x towards the thumb, y towards the fingertips,
origin at the middle of the radiocarpal joint, units mm of an adult-sized hand). The renderer
(:mod:`boneage_d2.phantom.render`) maps it to pixels with a random similarity transform, so the
hand's size in the image carries no age information.

Age enters only through the *maturity* value (male-equivalent months, see
:func:`~boneage_d2.phantom.anatomy.maturity.maturity_months`), and every feature is a smooth
function of it:

- **epiphyses** (radius, ulna, metacarpals, phalanges) appear as small, faint ossification centres
  at their Greulich-Pyle times, grow in height and in width relative to the metaphysis (capping in
  early adolescence) and become denser;
- the **growth-plate gap** between epiphysis and metaphysis is wide when the epiphysis appears,
  narrows through childhood and closes (fuses, leaving a faint sclerotic line that fades) in late
  adolescence: distal phalanges first, the distal radius last;
- **carpal ossification centres** (8) and the adductor sesamoid of the thumb appear one by one and
  grow from round nuclei into larger, boxier bones;
- cartilage (dark joint spaces) dominates in infancy; bone shafts widen, become denser and the
  metaphyses flare with maturity; fingers lengthen mildly relative to the palm.

The soft-tissue outline depends on maturity only through mild proportions (finger length and
width, a few percent), smaller than the per-hand random variation of the same proportions.

Modules: :mod:`.maturity` (timelines and cues), :mod:`.variation` (per-hand randomness),
:mod:`.shapes` (outlines), :mod:`.skeleton` (the assembled hand).
"""

from .maturity import (
    CARPALS,
    MAX_MATURITY_MONTHS,
    PHYSES,
    maturity_cues,
    maturity_months,
    physis_state,
    smoothstep,
)
from .skeleton import HandModel, build_hand
from .variation import HandVariation, sample_hand_variation

__all__ = [
    "CARPALS",
    "MAX_MATURITY_MONTHS",
    "PHYSES",
    "HandModel",
    "HandVariation",
    "build_hand",
    "maturity_cues",
    "maturity_months",
    "physis_state",
    "sample_hand_variation",
    "smoothstep",
]
