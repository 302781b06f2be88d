"""Seeing what the engine does: the web viewer and the file outputs that share its overlay.

- `board`: what has been said about each track (latest label, labels by frame, a timeline).
- `overlay`: draws skeletons, boxes, track ids and labels on a frame (pose.draw annotators).
- `outputs`: the sink's files: annotated video, labels JSONL, keypoints file.
- `feed` and `server`: the live page (`engine run --view`, `engine view`); only `server`
  imports aiohttp, and only a viewer imports `server`, so a run without a viewer never needs it.
"""
