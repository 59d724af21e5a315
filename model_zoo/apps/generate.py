"""Generate a seeded synthetic world with the MicroLens_1M_x1 schema (or reuse the verified one already there).

    python -m model_zoo.apps.generate --world seqneg --preset small --out data/MicroLens_seqneg_small
    python -m model_zoo.apps.generate --world microlens_synth --preset tiny --out /tmp/w --seed 7 --set num_train=2000

Worlds: ``microlens_synth`` (Bernoulli clicks, :mod:`model_zoo.datasets.synthetic.world`) and ``seqneg`` (latest
interaction + sampled negatives, :mod:`model_zoo.datasets.synthetic.seqneg`). Without ``--force`` a world made from
the same config whose files all match their manifest sha256 is reused; ``--force`` regenerates it, replacing the old
world only once the new one is complete. ``--set key=value`` overrides one config field (repeatable; a YAML value, a tuple
field as a list: ``--set next_item_mix=[0.1,0.3,0.6]``). Bad input exits with code 2 and a one-line error.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Dict, NoReturn, Optional, Sequence

from model_zoo.config import parse_overrides as config_overrides
from model_zoo.datasets.synthetic import DEFAULT_WORLD, WORLDS, ensure_world, make_config
from model_zoo.errors import ConfigError, ZooError, did_you_mean
from model_zoo.schema import SPLITS

__all__ = ["parse_overrides", "summary", "main"]


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors are one line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see --help)\n")


def parse_overrides(world: str, items: Sequence[str]) -> Dict[str, Any]:
    """``["num_train=2000", "next_item_mix=[0.1, 0.3, 0.6]"]`` -> overrides of ``world``'s config class (values
    are YAML, as the runner's ``--set``); names and types are checked by the config class itself."""
    if world not in WORLDS:
        raise ConfigError(f"unknown synthetic world '{world}'{did_you_mean(world, WORLDS)}; "
                          f"allowed worlds: {', '.join(WORLDS)}")
    return config_overrides(items)


def summary(manifest: Dict[str, Any], out: Path, cached: bool) -> str:
    """Human-readable multi-line summary of a manifest."""
    lines = [f"{manifest['dataset_id']} ({manifest.get('world', DEFAULT_WORLD)}) -> {out}"
             + ("  (cached and verified, nothing written)" if cached else "")]
    for split in SPLITS:
        auc = manifest["oracle_auc"].get(split)
        auc_txt = f"  oracle AUC {auc:.4f}" if auc is not None else ""
        lines.append(f"  {split:<5} rows {manifest['rows'][split]:>9,}  positive rate "
                     f"{manifest['positive_rate'][split]:.4f}{auc_txt}")
    h = manifest["hist_len"]["train"]
    lines.append(f"  items {manifest['num_items']:,}  users {manifest['num_users']:,}  history length "
                 f"min {h['min']} median {h['median']:g} mean {h['mean']:.2f} max {h['max']}")
    cold = manifest.get("cold_target_share")
    if cold:
        lines.append("  cold targets (share of rows): " + ", ".join(f"{s} {v['rows']:.3f}" for s, v in cold.items()))
    lines.append(f"  generated in {manifest['seconds']:.1f} s (generator {manifest['generator_version']}, "
                 f"config {manifest['config_hash'][:12]})")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point; returns the process exit code (2 on bad input)."""
    parser = _Parser(prog="python -m model_zoo.apps.generate", description=__doc__.splitlines()[0])
    parser.add_argument("--world", default=DEFAULT_WORLD, help=f"one of: {', '.join(WORLDS)} (default {DEFAULT_WORLD})")
    parser.add_argument("--preset", default="tiny", help="tiny, small or full (default tiny)")
    parser.add_argument("--out", required=True, help="output directory, e.g. data/MicroLens_seqneg_small")
    parser.add_argument("--seed", type=int, default=None, help="override the preset's seed")
    parser.add_argument("--force", action="store_true", help="regenerate even when a verified world is there")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config field (repeatable)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:       # usage error (code 2, one line already printed) or --help (code 0)
        return int(exc.code or 0)
    try:
        out = Path(args.out)
        overrides = parse_overrides(args.world, args.overrides)
        config = make_config(args.preset, seed=args.seed, world=args.world, **overrides)
        manifest, reused = ensure_world(config, out, force=args.force, progress=not args.quiet)
    except ZooError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(summary(manifest, out, reused))
    return 0


if __name__ == "__main__":
    sys.exit(main())
