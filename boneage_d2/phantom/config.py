"""Every knob of the phantom generator, and the distractor kinds with their default odds."""

from __future__ import annotations

from dataclasses import dataclass, field

from .anatomy.maturity import MAX_MATURITY_MONTHS

__all__ = [
    "DEFAULT_DISTRACTOR_PROBS",
    "DISTRACTOR_KINDS",
    "REFERENCE_LONG_SIDE",
    "PhantomConfig",
]

# Pixel sizes of blur, text, markers etc. are given at this long side and scale with the image.
REFERENCE_LONG_SIDE = 512.0

# Distractor names as recorded in phantom_truth.json, in the order they are drawn.
DISTRACTOR_KINDS: tuple[str, ...] = (
    "border",
    "second_hand",
    "ruler",
    "tag",
    "letters",
    "noise",
    "exposure",
)
DEFAULT_DISTRACTOR_PROBS: dict[str, float] = {
    "border": 0.35,  # bright collimation frame with a glow, darker outside
    "second_hand": 0.3,  # the other hand, partly visible at a side edge (a labelled hand)
    "ruler": 0.25,  # bright bar with ticks
    "tag": 0.5,  # L/R marker plate with initials
    "letters": 0.3,  # free bright letters/digits
    "noise": 0.3,  # strong Gaussian noise
    "exposure": 0.35,  # strong contrast/gamma/offset change (washed-out or dark films)
}


@dataclass
class PhantomConfig:
    """Every knob of the phantom generator (defaults in brackets are what the demo uses).

    Image and pose (independent of age, so size and outline do not reveal it):
        image_long_side [512]: long side of every image (px).
        short_side_range [(0.70, 0.85)]: short side as a fraction of the long side.
        landscape_prob [0.15]: share of landscape images (the hand stays upright).
        hand_extent_range [(0.55, 0.90)]: the hand's nominal extent (fingertips to 5 cm of
            forearm) as a fraction of the image height (random zoom/magnification).
        max_rotation_deg [10]: hand rotation, uniform in +-this.
        mirror_prob [0.1]: share of mirrored hands (a right hand / flipped film); landmark
            identities are kept (no flip map).
    Labels:
        male_prob [0.54]: share of boys (RSNA).
        age_distribution ["normal"]: "normal" (mean/sd below) or "uniform" (min..max).
        age_mean_months [127], age_sd_months [42], age_min_months [0], age_max_months [228].
        female_maturity_factor [1.12]: a girl of age a shows the bones of a boy of age
            ``1.12 a`` (clipped to 228 months).
        timing_jitter_months [4]: sd of each bone's own appearance/fusion time (biological
            scatter between the bones of one hand).
        label_noise_months [3]: label = appearance age + N(0, this), clipped to the age range.
    Distractors:
        distractors [True]: False turns every distractor off (none is recorded).
        distractor_scale [1.0]: multiplies every probability below.
        distractor_probs [DEFAULT_DISTRACTOR_PROBS]: probability per kind (DISTRACTOR_KINDS);
            a kind missing from the dict is off.
    Look:
        noise_sigma [2.0]: baseline detector noise (grey levels).
        blur_sigma_px [0.7]: baseline blur at a 512-px long side (scaled with the image).
        png_compression [1]: cv2 PNG compression level (0-9; deterministic at any; 1 is fast).
    """

    image_long_side: int = 512
    short_side_range: tuple[float, float] = (0.70, 0.85)
    landscape_prob: float = 0.15
    hand_extent_range: tuple[float, float] = (0.55, 0.90)
    max_rotation_deg: float = 10.0
    mirror_prob: float = 0.1
    male_prob: float = 0.54
    age_distribution: str = "normal"
    age_mean_months: float = 127.0
    age_sd_months: float = 42.0
    age_min_months: float = 0.0
    age_max_months: float = 228.0
    female_maturity_factor: float = 1.12
    timing_jitter_months: float = 4.0
    label_noise_months: float = 3.0
    distractors: bool = True
    distractor_scale: float = 1.0
    distractor_probs: dict[str, float] = field(
        default_factory=lambda: dict(DEFAULT_DISTRACTOR_PROBS)
    )
    noise_sigma: float = 2.0
    blur_sigma_px: float = 0.7
    png_compression: int = 1

    def distractor_prob(self, kind: str) -> float:
        """Probability that distractor ``kind`` is drawn (0 with distractors off)."""
        if not self.distractors:
            return 0.0
        return min(1.0, self.distractor_probs.get(kind, 0.0) * self.distractor_scale)

    def validate(self) -> PhantomConfig:
        """Raise ``ValueError`` naming the field when a value is out of range; return self."""

        def check(ok: bool, name: str, what: str) -> None:
            if not ok:
                raise ValueError(
                    f"PhantomConfig.{name}: expected {what}, got {getattr(self, name)!r}"
                )

        check(self.image_long_side >= 64, "image_long_side", "an integer >= 64")
        lo, hi = self.short_side_range
        check(0.3 <= lo <= hi <= 1.0, "short_side_range", "0.3 <= low <= high <= 1")
        lo, hi = self.hand_extent_range
        check(0.2 <= lo <= hi <= 0.95, "hand_extent_range", "0.2 <= low <= high <= 0.95")
        for name in ("landscape_prob", "mirror_prob", "male_prob"):
            check(0.0 <= getattr(self, name) <= 1.0, name, "a probability")
        check(0.0 <= self.max_rotation_deg <= 45.0, "max_rotation_deg", "0..45 degrees")
        check(self.age_distribution in ("normal", "uniform"), "age_distribution", "normal|uniform")
        check(
            0.0 <= self.age_min_months < self.age_max_months <= MAX_MATURITY_MONTHS,
            "age_max_months",
            f"0 <= age_min_months < age_max_months <= {MAX_MATURITY_MONTHS:g}",
        )
        check(self.age_sd_months > 0.0, "age_sd_months", "> 0")
        check(1.0 <= self.female_maturity_factor <= 1.5, "female_maturity_factor", "1..1.5")
        for name in ("timing_jitter_months", "label_noise_months", "distractor_scale"):
            check(getattr(self, name) >= 0.0, name, ">= 0")
        unknown = sorted(set(self.distractor_probs) - set(DISTRACTOR_KINDS))
        if unknown:
            raise ValueError(
                f"PhantomConfig.distractor_probs: unknown kinds {unknown}; "
                f"known: {list(DISTRACTOR_KINDS)}"
            )
        for k, p in self.distractor_probs.items():
            if not 0.0 <= float(p) <= 1.0:
                raise ValueError(f"PhantomConfig.distractor_probs[{k!r}]: expected 0..1, got {p}")
        check(self.noise_sigma >= 0.0, "noise_sigma", ">= 0")
        check(self.blur_sigma_px >= 0.0, "blur_sigma_px", ">= 0")
        check(0 <= self.png_compression <= 9, "png_compression", "0..9")
        return self
