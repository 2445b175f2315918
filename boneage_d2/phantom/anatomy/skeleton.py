"""The hand at a given maturity: bones, growth plates, carpals, soft tissue and landmarks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .maturity import (
    CARPALS,
    MAX_MATURITY_MONTHS,
    PHYSES,
    PHYSIS_INDEX,
    SESAMOID_APPEAR_MONTHS,
    VISIBLE_SIZE,
    PhysisState,
    carpal_growth,
    carpal_size,
    maturity_cues,
    physis_state,
    smoothstep,
)
from .shapes import (
    bone_polygon,
    convex_hull,
    epiphysis_polygon,
    perp,
    segment,
    shaft_walls,
    superellipse,
    tapered_capsule,
    unit,
)
from .variation import HandVariation

__all__ = ["FOREARM_EXTENT_MM", "HandModel", "build_hand"]

# Forearm below the wrist that belongs to the hand's nominal extent (mm); the forearm polygon
# itself continues far beyond so it leaves the image like in a real radiograph.
FOREARM_EXTENT_MM = 50.0
_FOREARM_FAR_MM = 600.0
# Half the adult joint space (mm); infants have up to 3 mm more cartilage on each side.
_ADULT_JOINT_HALF_MM = 1.0

# Rays: thumb, index, middle, ring, little. Metacarpal base (mm), length (mm), angle from the
# vertical (deg, positive towards the thumb), widths (base, shaft, head) in mm.
_MC_BASE = ((20.0, 32.5), (10.0, 40.0), (0.5, 41.0), (-9.5, 40.0), (-18.5, 37.0))
_MC_LEN = (44.0, 66.0, 63.0, 57.0, 52.0)
_MC_ANGLE = (38.0, 7.0, 0.0, -6.0, -12.0)
_MC_WIDTH = ((12.5, 9.0, 11.5), (11.0, 7.6, 11.5), (11.0, 7.8, 12.0), (9.5, 7.0, 11.0),
             (9.5, 6.8, 10.0))  # fmt: skip
# Phalanx segment lengths (joint to joint; distal: joint to bone tip) per ray.
_PP_LEN = (32.0, 40.0, 45.0, 42.0, 33.0)
_MP_LEN = (0.0, 24.0, 28.0, 27.0, 19.0)
_DP_LEN = (25.0, 18.0, 20.0, 20.0, 17.0)
# Phalanx widths (base, shaft, head).
_PP_WIDTH = ((11.5, 8.5, 10.0), (10.5, 7.5, 9.0), (11.0, 8.0, 9.3), (10.5, 7.5, 8.8),
             (9.5, 6.7, 8.0))  # fmt: skip
_MP_WIDTH = ((0, 0, 0), (9.0, 6.5, 7.5), (9.5, 6.9, 7.9), (9.1, 6.5, 7.5), (8.0, 5.6, 6.6))
_DP_WIDTH = ((9.5, 6.0, 7.2), (7.0, 4.5, 5.4), (7.4, 4.8, 5.8), (7.2, 4.6, 5.6), (6.6, 4.2, 5.0))
# Proximal to distal; the thumb has no middle phalanx.
_PHALANGES = (("pp", _PP_LEN, _PP_WIDTH), ("mp", _MP_LEN, _MP_WIDTH), ("dp", _DP_LEN, _DP_WIDTH))
# Finger soft tissue width at the MCP and at the tip (mm); fingertip pad beyond the bone.
_FINGER_TISSUE = ((21.0, 18.0), (18.0, 15.0), (18.5, 15.5), (17.5, 14.5), (15.5, 13.0))
_TIP_PAD_MM = 5.5
# Maximum extra finger angle (deg) at full spread, per ray (thumb abducts most).
_SPREAD_DEG = (16.0, 7.0, 0.0, -7.0, -15.0)
# Landmark indices (boneage_d2.schema.CANONICAL_17) of each ray's MCP, PIP/IP and DIP joints.
_RAY_KEYPOINTS = ((3, 4), (5, 6, 7), (8, 9, 10), (11, 12, 13), (14, 15, 16))

_RADIUS_X, _ULNA_X = 11.0, -13.5
_RADIUS_JOINT_Y, _ULNA_JOINT_Y = 7.0, 4.5
_RADIUS_WIDTH = (13.0, 12.5, 25.0)  # far shaft, shaft, metaphysis (mm)
_ULNA_WIDTH = (9.0, 8.5, 12.0)
_FOREARM_FLARE_MM = (32.0, 24.0)  # radius, ulna


@dataclass
class HandModel:
    """A hand in hand-frame millimetres, ready to be rasterised.

    - ``tissue``: polygons whose union is the soft-tissue outline (the hand mask).
    - ``bones``: ``(polygon, density)``; density ~1 for mature cortical bone.
    - ``cortex_bands``: ``(polyline, thickness_mm)`` bright cortical bands along the shafts.
    - ``scars``: ``(p0, p1, thickness_mm, strength)`` fused-physis sclerotic lines.
    - ``keypoints``: ``(17, 2)`` canonical landmarks (``boneage_d2.schema.CANONICAL_17``).
    - ``extent``: points whose bounding box is the hand's nominal extent (tips to 5 cm of forearm).
    - ``cues``: the maturity parameters that produced the picture (see ``maturity_cues``).
    """

    tissue: list[np.ndarray]
    bones: list[tuple[np.ndarray, float]]
    cortex_bands: list[tuple[np.ndarray, float]]
    scars: list[tuple[np.ndarray, np.ndarray, float, float]]
    keypoints: np.ndarray
    extent: np.ndarray
    cues: dict[str, float]


@dataclass
class _Ray:
    """One ray's skeleton: metacarpal base and axis, finger direction, joints from the MCP on."""

    index: int
    base: np.ndarray
    u_mc: np.ndarray
    angle_deg: float  # finger direction before the per-joint flexion
    joints: list[np.ndarray]  # MCP, the interphalangeal joints, the distal bone tip

    @property
    def mcp(self) -> np.ndarray:
        return self.joints[0]


class _BoneBuilder:
    """Collects bone polygons, cortical bands and fusion scars of one hand at one maturity."""

    def __init__(self, maturity: float, var: HandVariation):
        self.m = maturity
        self.var = var
        self.bones: list[tuple[np.ndarray, float]] = []
        self.bands: list[tuple[np.ndarray, float]] = []
        self.scars: list[tuple[np.ndarray, np.ndarray, float, float]] = []
        # Infant bones are thinner, less flared and less dense; joints are wide cartilage.
        self.width_factor = (0.78 + 0.22 * smoothstep(0.0, 150.0, maturity)) * var.bone_width_scale
        self.flare_factor = 0.45 + 0.55 * smoothstep(0.0, 120.0, maturity)
        self.density = 0.72 + 0.28 * smoothstep(0.0, 160.0, maturity)
        self.joint_half_mm = _ADULT_JOINT_HALF_MM + 3.0 * (1.0 - smoothstep(0.0, 48.0, maturity))
        self.cortex_frac = 0.12 + 0.1 * smoothstep(0.0, 160.0, maturity)

    def widths(self, w: tuple[float, float, float], meta_end: int) -> tuple[float, float, float]:
        """Scale adult widths; the metaphysis end (index 0 or 2) flares less in infants."""
        ws = w[1] * self.width_factor
        out = [w[0] * self.width_factor, ws, w[2] * self.width_factor]
        out[meta_end] = ws + (out[meta_end] - ws) * self.flare_factor
        return out[0], out[1], out[2]

    def long_bone(
        self,
        jp: np.ndarray,
        jd: np.ndarray,
        widths: tuple[float, float, float],
        physis: str | None,
        epi_end: str,
        far_cap: float,
        epi_dome: float = 0.45,
        epi_skew: float = 0.0,
        far_cap_exp: float = 0.9,
        flare_mm: float | None = None,
    ) -> None:
        """A tubular bone between joints ``jp`` (proximal) and ``jd`` with one epiphysis."""
        jh = self.joint_half_mm
        _, u = segment(jp, jd)
        a = jp + jh * u
        b = jd - jh * u
        prox = epi_end == "prox"
        meta_idx = 0 if prox else 2
        w = self.widths(widths, meta_idx)
        state = None
        if physis is not None:
            idx = PHYSIS_INDEX[physis]
            state = physis_state(PHYSES[idx], self.m, float(self.var.physis_jitter_months[idx]))
        p0, p1 = a, b  # the shaft leaves room for the epiphysis and the growth-plate gap
        if state is not None and prox:
            p0 = a + (state.height_mm + state.gap_mm) * u
        elif state is not None:
            p1 = b - (state.height_mm + state.gap_mm) * u
        if prox:
            caps, exps = (0.25, far_cap), (0.35, far_cap_exp)
        else:
            caps, exps = (far_cap, 0.25), (far_cap_exp, 0.35)
        poly = bone_polygon(p0, p1, w, caps[0], caps[1], exps, flare_mm)
        self.bones.append((poly, self.density))
        thick = self.cortex_frac * w[1]
        self.bands += [(line, thick) for line in shaft_walls(p0, p1, u, w, thick, flare_mm)]
        if state is None or not state.present:
            return
        if prox:
            face, u_joint = a + state.height_mm * u, -u
        else:
            face, u_joint = b - state.height_mm * u, u
        self._epiphysis(state, face, u_joint, u, w[meta_idx], epi_dome, epi_skew)

    def _epiphysis(
        self,
        state: PhysisState,
        face: np.ndarray,
        u_joint: np.ndarray,
        u_bone: np.ndarray,
        w_meta: float,
        dome: float,
        skew: float,
    ) -> None:
        """The epiphysis on ``face`` and, around fusion, the sclerotic line of its growth plate."""
        width = w_meta * state.width_ratio
        epi = epiphysis_polygon(face, u_joint, width, state.height_mm, dome, skew)
        self.bones.append((epi, self.density * state.density))
        if state.scar > 0.01:
            v = perp(u_bone)
            sp = face - u_joint * (0.5 * max(state.gap_mm, 0.0) + 0.2)
            self.scars.append((sp - 0.42 * w_meta * v, sp + 0.42 * w_meta * v, 0.7, state.scar))

    def blob(self, poly: np.ndarray, density: float) -> None:
        """A bone without growth plate (carpal, sesamoid) of relative ``density``."""
        self.bones.append((poly, self.density * density))


def _physis_landmark(joint: np.ndarray, name: str) -> np.ndarray:
    """Landmark = middle of the adult epiphysis (joint space + half its height): the physis."""
    height = PHYSES[PHYSIS_INDEX[name]].height_mm
    return joint - np.array([0.0, _ADULT_JOINT_HALF_MM + 0.5 * height])


def _add_forearm_bones(bld: _BoneBuilder, px: float) -> tuple[np.ndarray, np.ndarray]:
    """Radius and ulna (shafts leave the image, epiphyses distal); return their landmarks."""
    far = -_FOREARM_FAR_MM
    rj = np.array([_RADIUS_X * px, _RADIUS_JOINT_Y])
    bld.long_bone(
        np.array([_RADIUS_X * px * 1.2, far]), rj, _RADIUS_WIDTH, "radius", "dist", 0.0,
        epi_dome=0.55, epi_skew=0.45, flare_mm=_FOREARM_FLARE_MM[0],
    )  # fmt: skip
    uj = np.array([_ULNA_X * px, _ULNA_JOINT_Y])
    bld.long_bone(
        np.array([_ULNA_X * px * 1.3, far]), uj, _ULNA_WIDTH, "ulna", "dist", 0.0, epi_dome=0.7,
        flare_mm=_FOREARM_FLARE_MM[1],
    )  # fmt: skip
    return _physis_landmark(rj, "radius"), _physis_landmark(uj, "ulna")


def _add_carpals(bld: _BoneBuilder, px: float) -> np.ndarray:
    """The ossified carpal centres; return the carpal landmark (the capitate's centre)."""
    m = bld.m
    for c, jitter in zip(CARPALS, bld.var.carpal_jitter_months):
        appear = c.appear_months + float(jitter)
        k = carpal_size(appear, m)
        if k <= VISIBLE_SIZE:
            continue
        growth = carpal_growth(appear, m)
        size = (max(1.1 * c.size_mm[0] * k, 1.6), max(1.1 * c.size_mm[1] * k, 1.6))
        # nuclei are round, mature carpals are longer and boxier
        size = (
            size[0] + (1.0 - growth) * (min(size) - size[0]),
            size[1] + (1.0 - growth) * (min(size) - size[1]),
        )
        centre = np.array([c.centre_mm[0] * px, c.centre_mm[1]])
        bld.blob(superellipse(centre, size, c.angle_deg, 2.0 + 0.9 * growth), 0.6 + 0.4 * growth)
    return np.array([CARPALS[0].centre_mm[0] * px, CARPALS[0].centre_mm[1]])


def _add_ray_bones(bld: _BoneBuilder, r: int, px: float, flen: float) -> _Ray:
    """Metacarpal and phalanges of ray ``r`` (and the thumb sesamoid); return its skeleton."""
    var = bld.var
    thumb = r == 0
    base = np.array([_MC_BASE[r][0] * px, _MC_BASE[r][1]])
    u_mc = unit(_MC_ANGLE[r] + (var.finger_angle_jitter_deg[r] * 0.3))
    mcp = base + _MC_LEN[r] * u_mc
    bld.long_bone(
        base - 0.5 * u_mc, mcp, _MC_WIDTH[r], f"mc{r + 1}", "prox" if thumb else "dist",
        3.2 if thumb else 1.5, epi_dome=0.45 if thumb else 0.95, far_cap_exp=0.8,
    )  # fmt: skip
    ang = _MC_ANGLE[r] + var.spread * _SPREAD_DEG[r] + var.finger_angle_jitter_deg[r]
    joints = [mcp]
    phalanges = [(nm, lens[r], wids[r]) for nm, lens, wids in _PHALANGES if not thumb or nm != "mp"]
    for j, (nm, seg_len, wid) in enumerate(phalanges):
        jd = joints[-1] + seg_len * flen * unit(ang + var.flex_jitter_deg[r, j])
        is_distal = nm == "dp"
        bld.long_bone(
            joints[-1], jd, wid, f"{nm}{r + 1}", "prox",
            1.6 if is_distal else 1.8, far_cap_exp=0.6 if is_distal else 0.8,
        )  # fmt: skip
        joints.append(jd)
    if thumb:  # adductor sesamoid (adolescent cue), ulnar side of the MC1 head
        k = carpal_size(SESAMOID_APPEAR_MONTHS + float(var.carpal_jitter_months[-1]), bld.m)
        if k > VISIBLE_SIZE:
            centre = mcp - 3.0 * u_mc + 4.5 * perp(u_mc)
            bld.blob(superellipse(centre, (4.2 * k, 4.6 * k), 0.0, 2.0), 0.85)
    return _Ray(r, base, u_mc, ang, joints)


def _finger_tissue(ray: _Ray, w0: float, w1: float) -> list[np.ndarray]:
    """Soft tissue of a finger (MCP width ``w0``, tip width ``w1``): one capsule per segment."""
    r, joints = ray.index, ray.joints
    _, u_last = segment(joints[-2], joints[-1])
    tip = joints[-1] + (_TIP_PAD_MM - 0.5 * w1) * u_last
    chain = [ray.mcp - (0.25 if r > 0 else 0.6) * _MC_LEN[r] * ray.u_mc, *joints[:-1], tip]
    n_seg = len(chain) - 1
    capsules = []
    for k in range(n_seg):
        wa = w0 + (w1 - w0) * (k / n_seg) + (1.0 if 0 < k else 0.0)
        wb = w0 + (w1 - w0) * ((k + 1) / n_seg) + (1.0 if k + 1 < n_seg else 0.0)
        capsules.append(tapered_capsule(chain[k], chain[k + 1], wa, wb))
    return capsules


def _palm_points(ray: _Ray, w0: float, flen: float) -> list[np.ndarray]:
    """Palm hull points of a ray: finger webs, hypothenar (little) and thenar (thumb) eminences."""
    r = ray.index
    u_f = unit(ray.angle_deg)
    v_f = perp(u_f)
    web = ray.mcp + 0.28 * _PP_LEN[r] * flen * u_f
    v_mc = perp(ray.u_mc)

    def along_mc(eminence: tuple[tuple[float, float], ...]) -> list[np.ndarray]:
        return [ray.base + t * _MC_LEN[r] * ray.u_mc + off * v_mc for t, off in eminence]

    if r == 0:
        thenar = along_mc(((0.0, -8.0), (0.45, -9.0), (0.85, -7.0)))
        return [*thenar, ray.mcp + 0.15 * _PP_LEN[r] * u_f + 0.4 * w0 * v_f]
    if r == 1:
        return [web - 0.5 * w0 * v_f]
    if r == 4:
        return [web + 0.5 * w0 * v_f, *along_mc(((0.1, 11.0), (0.45, 10.5), (0.8, 9.0)))]
    return [web]


def _forearm_outline(px: float) -> np.ndarray:
    """Forearm soft tissue: widens a little towards the elbow and leaves the image."""
    far = -_FOREARM_FAR_MM
    return np.array(
        [
            [-28.5 * px, 2.0],
            [-30.0 * px, -60.0],
            [-36.0 * px, far],
            [36.0 * px, far],
            [31.0 * px, -60.0],
            [29.5 * px, 2.0],
        ]
    )


def _extent(tissue: list[np.ndarray], px: float) -> np.ndarray:
    """Points spanning the nominal extent: the outline above 5 cm of forearm, and that width."""
    pts = [p for poly in tissue for p in poly if p[1] >= -FOREARM_EXTENT_MM]
    pts += [
        np.array([-29.0 * px, -FOREARM_EXTENT_MM]),
        np.array([29.0 * px, -FOREARM_EXTENT_MM]),
    ]
    return np.array(pts)


def build_hand(maturity: float, var: HandVariation | None = None) -> HandModel:
    """Build the hand at ``maturity`` (male-equivalent months, 0-228) with variation ``var``.

    Returns a :class:`HandModel` in hand-frame millimetres (left hand, PA view, thumb at +x).
    """
    var = var if var is not None else HandVariation()
    m = float(np.clip(maturity, 0.0, MAX_MATURITY_MONTHS))
    bld = _BoneBuilder(m, var)
    px = var.palm_width_scale
    # Fingers are relatively short in infancy (mild, smaller than the per-hand variation).
    flen = var.finger_length_scale * (0.95 + 0.05 * smoothstep(0.0, 180.0, m))
    tissue_scale = var.tissue_width_scale * (1.06 - 0.06 * smoothstep(0.0, 120.0, m))

    keypoints = np.zeros((17, 2))
    keypoints[0], keypoints[1] = _add_forearm_bones(bld, px)
    keypoints[2] = _add_carpals(bld, px)
    tissue: list[np.ndarray] = []
    palm_pts = [np.array([-27.0 * px, -2.0]), np.array([27.0 * px, -2.0]),
                np.array([-28.0 * px, 8.0]), np.array([28.0 * px, 8.0])]  # fmt: skip
    for r in range(5):
        ray = _add_ray_bones(bld, r, px, flen)
        for kp, joint in zip(_RAY_KEYPOINTS[r], ray.joints):
            keypoints[kp] = joint
        w0, w1 = (w * tissue_scale for w in _FINGER_TISSUE[r])
        tissue += _finger_tissue(ray, w0, w1)
        palm_pts += _palm_points(ray, w0, flen)
    tissue.append(convex_hull(np.array(palm_pts)))
    tissue.append(_forearm_outline(px))
    return HandModel(
        tissue=tissue,
        bones=bld.bones,
        cortex_bands=bld.bands,
        scars=bld.scars,
        keypoints=keypoints,
        extent=_extent(tissue, px),
        cues=maturity_cues(m, var),
    )
