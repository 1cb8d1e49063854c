"""The demo as a client of the production image, for `make image-check`.

The image ships the product only; the check mounts the checkout's `demo` package read-only and
runs this with it on PYTHONPATH: the product's settings and models, the demo's generator and
installer used as a library (not an installed app). It writes the synthetic legacy systems
under the given folder, installs the demo sources, customers and personal-cloud client (with an
https redirect URI: production accepts no other), and prints the sources' environment lines.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--customers", type=int, default=6)
    parser.add_argument("--telco-url", required=True)
    parser.add_argument("--redirect-uri", default="https://pims.example/callback")
    args = parser.parse_args()

    import django

    django.setup()
    from demo.generator import generate
    from demo.install import install_demo, install_demo_client
    from demo.sources import demo_environment

    if not (args.out_dir / "ground_truth" / "customers.json").exists():
        args.out_dir.mkdir(parents=True, exist_ok=True)
        generate(args.out_dir, customers=args.customers)
    install_demo(args.out_dir)
    client = install_demo_client()
    client.redirect_uris = args.redirect_uri
    client.save()
    for name, value in demo_environment(args.out_dir, telco_url=args.telco_url).items():
        print(f"{name}={value}")


if __name__ == "__main__":
    main()
