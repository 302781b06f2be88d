"""Where frames come from: source strings, their readers, the MHAD layout, the synthetic people."""
from engine.sources.readers import Frame, StreamReader, open_camera, open_streams, probe
from engine.sources.spec import ACCEPTED_FORMS, IMAGE_SUFFIXES, VIDEO_SUFFIXES, SourceSpec, natural_key, parse_source

__all__ = [
    "ACCEPTED_FORMS", "IMAGE_SUFFIXES", "VIDEO_SUFFIXES", "Frame", "SourceSpec", "StreamReader",
    "natural_key", "open_camera", "open_streams", "parse_source", "probe",
]
