"""Skeleton images: crop, colours, skipped joints, batching and the pyramid."""
from __future__ import annotations

import numpy as np
import pytest

from pose import coco
from pose.skeleton import MARGIN, limb_thickness, skeleton_image, skeleton_images, skeleton_pyramid

# A standing person in a 640x480 frame, COCO-18 order.
STANDING = np.array([
    [320, 100], [320, 140], [290, 140], [275, 190], [265, 235], [350, 140], [365, 190], [375, 235],
    [300, 240], [298, 310], [296, 380], [340, 240], [342, 310], [344, 380],
    [312, 92], [328, 92], [304, 96], [336, 96],
], np.float32)


def person(xy: np.ndarray = STANDING, visible: np.ndarray | None = None) -> np.ndarray:
    kp = np.zeros((18, 3), np.float32)
    kp[:, :2] = xy
    kp[:, 2] = 1.0 if visible is None else visible
    return kp


def lit(img: np.ndarray) -> np.ndarray:
    return img.max(axis=-1) > 0


def colours(img: np.ndarray) -> set[tuple[int, int, int]]:
    return {tuple(int(v) for v in c) for c in img[lit(img)]}


def test_shape_dtype_and_only_limb_colours_on_black():
    img = skeleton_image(person(), 64)
    assert img.shape == (64, 64, 3) and img.dtype == np.uint8
    assert colours(img) <= set(coco.LIMB_COLORS_BGR)
    # Every limb of a fully visible person shows up.
    assert len(colours(img)) >= 15
    assert 0.05 < lit(img).mean() < 0.6


def test_person_is_centred_with_margin_and_aspect_kept():
    img = skeleton_image(person(), 64)
    ys, xs = np.nonzero(lit(img))
    height, width = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
    # The person is taller than wide: its height fills the crop up to the margin.
    joints_span = 63 / (1 + 2 * MARGIN)
    assert joints_span <= height <= joints_span + 2 * limb_thickness(64) + 1
    src_h = np.ptp(STANDING[:, 1])
    src_w = np.ptp(STANDING[:, 0])
    assert abs(width / height - src_w / src_h) < 0.1
    assert abs((ys.min() + ys.max()) / 2 - 31.5) <= 1.5
    assert abs((xs.min() + xs.max()) / 2 - 31.5) <= 1.5


def test_translation_and_scale_do_not_change_the_image():
    a = skeleton_image(person(), 64)
    b = skeleton_image(person(STANDING * 2.5 + np.float32([123.0, -57.0])), 64)
    # Same crop up to sub-pixel rounding of line ends.
    assert (lit(a) != lit(b)).mean() < 0.02


def test_missing_joints_skip_their_limbs():
    visible = np.zeros(18, np.float32)
    visible[[coco.NECK, coco.R_SHOULDER, coco.R_ELBOW, coco.R_WRIST]] = 1
    img = skeleton_image(person(visible=visible), 64)
    drawn = {i for i, (a, b) in enumerate(coco.LIMBS) if visible[a] and visible[b]}
    assert colours(img) == {coco.LIMB_COLORS_BGR[i] for i in drawn}


def test_nobody_visible_gives_black_and_bad_shape_is_refused():
    assert not skeleton_image(person(visible=np.zeros(18)), 32).any()
    nan = person()
    nan[:, :2] = np.nan
    assert not skeleton_image(nan, 32).any()
    with pytest.raises(ValueError):
        skeleton_image(np.zeros((17, 3), np.float32))


def test_batch_equals_one_by_one_and_tiles_do_not_bleed():
    rng = np.random.default_rng(1)
    batch = np.stack([person(STANDING + rng.normal(0, 20, (18, 2))) for _ in range(5)])
    batch[2, :, 2] = 0  # an invisible person between visible ones stays black
    images = skeleton_images(batch, 64)
    assert images.shape == (5, 64, 64, 3)
    for i in range(5):
        np.testing.assert_array_equal(images[i], skeleton_image(batch[i], 64))
    assert not images[2].any()
    assert skeleton_images(np.zeros((0, 18, 3), np.float32), 16).shape == (0, 16, 16, 3)


def test_thickness_scales_with_size_and_small_sizes_still_draw():
    assert limb_thickness(64) > limb_thickness(16) >= limb_thickness(8) == 1
    for size in (8, 16, 32, 128):
        assert lit(skeleton_image(person(), size)).any()


def test_pyramid_levels_agree_with_the_top_level():
    batch = np.stack([person(), person(STANDING[:, ::-1].copy())])
    levels = skeleton_pyramid(batch)
    assert [lv.shape for lv in levels] == [(2, s, s, 3) for s in (64, 32, 16, 8)]
    np.testing.assert_array_equal(levels[0], skeleton_images(batch, 64))
    for p in range(2):
        top = lit(levels[0][p])
        top_centre = np.argwhere(top).mean(axis=0)
        for level, size in zip(levels[1:], (32, 16, 8)):
            mass = level[p].astype(np.float32).sum(axis=-1)
            centre = (np.argwhere(mass > 0) * mass[mass > 0][:, None]).sum(0) / mass.sum()
            scale = 64 / size
            # Centres of mass agree up to a pixel of the small level.
            assert np.abs((centre + 0.5) * scale - 0.5 - top_centre).max() < scale * 1.5
