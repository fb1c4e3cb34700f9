"""``python -m plt.shop``: serve the demo retailer."""

from plt.shop.cli import main

raise SystemExit(main())
