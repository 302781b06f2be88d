"""Source strings, parsed in one place into a typed `SourceSpec`.

Every command (`run`, `pose`, `prepare`, benchmarks) goes through `parse_source`, so a new
scheme is added here once and every error message lists the accepted forms.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl

from engine.errors import SourceError
from engine.sources import mhad
from engine.sources.mhad import ACTIONS

ACCEPTED_FORMS = (
    "camera:N[?width=&height=&fps=], a video file, image folder or glob [?fps=N], "
    "rtsp://... or http(s)://..., mhad:SXX[/AYY[/RZZ]][?kinect=2], "
    "synthetic:[AYY|standing|walking|other|all][?loops=&subjects=&seed=&fps=&size=&script=ACTIVITY:SECONDS,...]"
)
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"})


@dataclass(frozen=True)
class SourceSpec:
    """What a source string names; `live` sources drop frames, recorded ones are lossless."""

    kind: str  # camera | stream | video | images | mhad | synthetic
    text: str
    live: bool
    location: str = ""
    params: dict = field(default_factory=dict)


# People followed per frame when --max-people is not given (0): real media (cameras, video files,
# image folders, streams) show several people, so the pose stage follows up to this many; the
# synthetic and MHAD sources show one person each, so they keep one.
REAL_MEDIA_MAX_PEOPLE = 6
ONE_PERSON_KINDS = frozenset({"synthetic", "mhad"})


def default_max_people(specs: list[SourceSpec]) -> int:
    """People per frame for these sources when the user did not say: REAL_MEDIA_MAX_PEOPLE if any is real media."""
    return 1 if specs and all(s.kind in ONE_PERSON_KINDS for s in specs) else REAL_MEDIA_MAX_PEOPLE


def natural_key(text: str) -> list:
    """Sort key that puts frame_2 before frame_10."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def _query(text: str) -> tuple[str, dict[str, str]]:
    base, _, query = text.partition("?")
    return base, dict(parse_qsl(query, keep_blank_values=True))


def _int_param(params: dict, key: str, source: str, default: int, lo: int = 0, hi: int = 1 << 30) -> int:
    raw = params.get(key)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SourceError(f"source {source!r}: {key}={raw!r} is not an integer") from None
    if not lo <= value <= hi:
        raise SourceError(f"source {source!r}: {key}={value} is out of range {lo}..{hi}")
    return value


def _check_keys(params: dict, allowed: set[str], source: str) -> None:
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise SourceError(f"source {source!r}: unknown option {unknown[0]!r}; accepted: {', '.join(sorted(allowed))}")


def parse_source(text: str, mhad_root: str | None = None) -> SourceSpec:
    """Turn a source string into a SourceSpec; raises SourceError listing the accepted forms."""
    text = text.strip()
    if not text:
        raise SourceError(f"empty source: use one of {ACCEPTED_FORMS}")
    lowered = text.lower()
    if lowered.startswith(("rtsp://", "rtsps://", "http://", "https://")):
        return SourceSpec("stream", text, live=True, location=text)
    scheme, sep, rest = text.partition(":")
    if sep and scheme == "camera":
        base, params = _query(rest)
        _check_keys(params, {"width", "height", "fps"}, text)
        if not base.isdigit():
            raise SourceError(f"source {text!r}: camera index must be a number, e.g. camera:0")
        for key in ("width", "height", "fps"):
            _int_param(params, key, text, 0, 1, 10000)
        return SourceSpec("camera", text, live=True, location=base, params=params)
    if sep and scheme == "mhad":
        return _parse_mhad(text, rest, mhad_root)
    if sep and scheme == "synthetic":
        return _parse_synthetic(text, rest)
    if sep and len(scheme) > 1 and "/" not in scheme and not os.path.exists(text):
        raise SourceError(f"unknown source scheme {scheme + ':'!r}: use one of {ACCEPTED_FORMS}")
    base, params = _path_options(text)
    path = Path(base).expanduser()
    if path.is_dir() or any(ch in base for ch in "*?[") or (path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES):
        return SourceSpec("images", text, live=False, location=str(path), params=_file_params(params, text))
    if path.is_file():
        return SourceSpec("video", text, live=False, location=str(path), params=_file_params(params, text))
    if path.suffix.lower() in VIDEO_SUFFIXES | IMAGE_SUFFIXES:
        raise SourceError(f"file {base} not found: check the path")
    raise SourceError(f"source {text!r} is neither an existing file or folder nor a known scheme: use one of {ACCEPTED_FORMS}")


# `?key=value[&key=value...]` at the very end of a path: its options. Keys are lowercase words and
# values hold no `/`, so a `?` wildcard inside a glob (`img?.png`, `frames/?/x.png`) stays one.
_PATH_OPTIONS = re.compile(r"\?([a-z_]+=[^/&?]*(?:&[a-z_]+=[^/&?]*)*)")
FILE_OPTIONS = frozenset({"fps"})


def _path_options(text: str) -> tuple[str, dict[str, str]]:
    """(path, options) of a file, folder or glob source: `frames/?fps=10` -> ('frames/', {'fps': '10'}).

    A path that exists as written is taken whole, options never: a file really named `a?fps=1`
    still opens. Otherwise a trailing `?key=value...` is options, as on camera: or synthetic:.
    """
    if os.path.exists(os.path.expanduser(text)):
        return text, {}
    cut = text.rfind("?")
    if cut < 0 or not _PATH_OPTIONS.fullmatch(text[cut:]):
        return text, {}
    return text[:cut], dict(parse_qsl(text[cut + 1:], keep_blank_values=True))


def _file_params(params: dict[str, str], text: str) -> dict:
    """Checked options of a file, folder or glob: `fps` (the frames' rate: images carry none, a video may lie)."""
    _check_keys(params, set(FILE_OPTIONS), text)
    return {"fps": float(_int_param(params, "fps", text, 0, 1, 240))} if "fps" in params else {}


def _parse_mhad(text: str, rest: str, mhad_root: str | None) -> SourceSpec:
    path, params = _query(rest)
    _check_keys(params, {"kinect"}, text)
    kinect = _int_param(params, "kinect", text, 1, 1, 2)
    subject, action, rep = mhad.parse_ids(text, path)
    kin_dir = mhad.kinect_dir(mhad_root, kinect)
    sequences = mhad.sequences(text, kin_dir, subject, action, rep)
    return SourceSpec("mhad", text, live=False, location=str(kin_dir), params={"kinect": kinect, "sequences": sequences})


def _synthetic_activities(text: str, base: str) -> list[int]:
    """Indices into synthetic.ACTIVITIES: empty = the MHAD actions (the shipped model's classes),
    `AYY` one of them, `standing`/`walking`/`other` one activity beyond MHAD, `all` every one."""
    from engine.sources.synthetic import ACTIVITIES, EXTRA_ACTIVITIES

    if not base:
        return list(range(len(ACTIONS)))
    if base.lower() == "all":
        return list(range(len(ACTIVITIES)))
    if base.lower() in EXTRA_ACTIVITIES:
        return [ACTIVITIES.index(base.lower())]
    match = re.fullmatch(r"A(\d{2})", base)
    if not match or not 1 <= int(match.group(1)) <= len(ACTIONS):
        raise SourceError(f"source {text!r}: synthetic action must be A01-A{len(ACTIONS):02d} "
                          f"or one of {', '.join(EXTRA_ACTIVITIES)}, all")
    return [int(match.group(1)) - 1]


def _synthetic_script(text: str, raw: str) -> list[tuple[int, float]]:
    """`standing:3,A05:1,standing:3` -> [(activity index, seconds), ...] for synthetic.scripted_motion."""
    from engine.sources.synthetic import activity_index

    segments = []
    for part in raw.split(","):
        name, _, seconds = part.strip().rpartition(":")
        try:
            index, value = activity_index(name), float(seconds)
        except ValueError:
            raise SourceError(f"source {text!r}: script segment {part.strip()!r} must look like walking:2.5 or A05:1 "
                              "(an activity, a colon, seconds)") from None
        if not 0.1 <= value <= 600:
            raise SourceError(f"source {text!r}: script segment {part.strip()!r} lasts {value} s: use 0.1-600")
        segments.append((index, value))
    return segments


def _parse_synthetic(text: str, rest: str) -> SourceSpec:
    base, params = _query(rest)
    _check_keys(params, {"loops", "subjects", "seed", "fps", "size", "script"}, text)
    actions = _synthetic_activities(text, base)
    script = _synthetic_script(text, params["script"]) if "script" in params else []
    if script and base:
        raise SourceError(f"source {text!r}: a script names its own activities: write synthetic:?script=...")
    subjects_text = params.get("subjects", "8-12")
    sub_match = re.fullmatch(r"(\d+)(?:-(\d+))?", subjects_text)
    if not sub_match:
        raise SourceError(f"source {text!r}: subjects must look like 8-12 or 3")
    lo, hi = int(sub_match.group(1)), int(sub_match.group(2) or sub_match.group(1))
    if not 1 <= lo <= hi <= 99:
        raise SourceError(f"source {text!r}: subjects range {subjects_text} is out of 1..99")
    size_text = params.get("size", "640x480")
    size_match = re.fullmatch(r"(\d+)x(\d+)", size_text)
    if not size_match or not all(64 <= int(v) <= 4096 for v in size_match.groups()):
        raise SourceError(f"source {text!r}: size must look like 640x480 (64..4096 each)")
    resolved = {
        "actions": actions,
        "subjects": list(range(lo, hi + 1)),
        "loops": _int_param(params, "loops", text, 0, 0),
        "seed": _int_param(params, "seed", text, 0, 0),
        "fps": float(_int_param(params, "fps", text, 30, 1, 240)),
        "size": (int(size_match.group(1)), int(size_match.group(2))),
        "script": script,  # [(activity index, seconds)]: one scripted scene per subject when given
    }
    return SourceSpec("synthetic", text, live=False, location=base, params=resolved)
