#!/usr/bin/env python
"""Write a full-size random RNA-FM checkpoint (name it RNA-FM_*.pth: the rna-fm package looks for
contact-regression weights beside any other name) (12 layers, 640-d, 20 heads, FFN 5120, ~99.5 M parameters).

Same file format as the official RNA-FM_pretrained.pth (see
rnaloc_tools.encoders.rnafm.random_checkpoint_data), seeded random weights, ~400 MB.
For benchmarks only: never commit it (bench/*.pth is git-ignored).

    python bench/make_rnafm_checkpoint.py bench/RNA-FM_random.pth [--seed 0]
"""

import argparse
import os

from rnaloc_tools.encoders.rnafm import write_random_checkpoint

FULL_SIZE = dict(layers=12, embed_dim=640, heads=20, ffn=5120, max_positions=1024)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", help="checkpoint to write (.pth)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    write_random_checkpoint(args.output, seed=args.seed, **FULL_SIZE)
    print(f"{args.output}: {os.path.getsize(args.output) / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
