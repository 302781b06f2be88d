"""`engine keys generate DIR`: CURVE key pairs for encrypted, authenticated tcp endpoints."""
from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("keys", help="generate CURVE keys for --curve-keys")
    p.add_argument("action", choices=["generate"])
    p.add_argument("folder", help="where to write server.key(_secret), client.key(_secret) and authorized/")


def run(args: argparse.Namespace) -> int:
    from engine.framework.security import generate_keys

    folder = generate_keys(args.folder)
    print(f"wrote CURVE keys to {folder}: give the engine --curve-keys {folder}; a remote subscriber needs "
          f"client.key, client.key_secret and server.key (and its public key in {folder}/authorized/)")
    return 0
